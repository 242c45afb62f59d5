"""The same training step on Cortex-M (bare metal under qemu-system-arm) as on the host.

Properties protected:
- M4 (mps2-an386) and M7 (mps2-an500) firmware print the same per-step losses, post-training
  predictions / logits and parameter checksum as the x86 C engine and the numpy engine (the
  numeric contract: integer-only training, identical bits everywhere), also with partially
  trainable weights (split filters: trainable slice + frozen rest); the FPU-less M3 too.
- The engine's arena bytes (total, persistent, planned) printed on the device equal the host's
  (its arena layout has no pointers, so the host's memory report is the device's).
- A program whose arena exceeds the 256 KB of RAM fails at link time with a message saying so.
- Every micro_ops C file cross-builds warning-free (-Wall -Wextra -Werror) for M0+, M3, M4, M7
  and M33, and no function reachable from eval() calls a floating-point helper on a soft-float
  core (float only in prepare-time code; QUANTIZE / DEQUANTIZE at float model edges excepted).
- The instruction counter (SysTick under -icount shift=0) is calibrated: 40 instructions per
  tick on the 25 MHz mps2 clock, exact on a loop of known length, and deterministic.

Needs arm-none-eabi-gcc (+ newlib) and qemu-system-arm (CI installs them: Makefile APT_PACKAGES).
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import ROOT, shared_model
from tflm_train import firmware as fw

_MISSING = fw.missing_tools()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"Cortex-M toolchain: {_MISSING}")

DEMO = ROOT / "examples" / "models" / "fashion5_cnn_int8.tflite"
RESNET8 = "mlcommons/resnet8_cifar10_int8.tflite"
# conv, depthwise and pointwise layers trained on part of their channels (split filters)
PARTIAL = "sparse:bias=5,2=1/2,3=1/2,5=1/4,6=1/8"
VWW = "mlcommons/vww_mobilenetv1_96_int8.tflite"
# QEMU steps of ResNet-8 cost ~117 M instructions each: keep CI short.
STEPS = {"demo": 4, "demo-partial": 4, "resnet8": 3}
INFERENCES = 2

_models: dict = {}
_host: dict = {}


def _trainable(name: str):
    import tflm_train as tt

    if name not in _models:
        if name == "demo":
            _models[name] = tt.convert(DEMO, update="last-2", num_classes=5)
        elif name == "demo-partial":
            _models[name] = tt.convert(DEMO, update=PARTIAL, num_classes=5)
        else:
            _models[name] = tt.convert(shared_model(RESNET8), update="last-2")
    return _models[name]


def _host_reference(name: str, firmware: fw.Firmware, backend: str) -> dict:
    key = (name, backend)
    if key not in _host:
        _host[key] = fw.host_reference(_trainable(name), firmware.images, firmware.labels,
                                       firmware.inferences, backend=backend)
    return _host[key]


@pytest.mark.parametrize("name", ["demo", "demo-partial", "resnet8"])
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_device_training_matches_host_bits(cpu, name, tmp_path):
    tm = _trainable(name)
    f = fw.build_firmware(tm, cpu=cpu, steps=STEPS[name], inferences=INFERENCES, out_dir=tmp_path)
    assert f.bss >= f.arena_bytes and f.ram <= fw.RAM_BYTES
    run = f.run(timeout=300)
    assert run.ok, run.output
    assert len(run.losses) == STEPS[name] and len(run.predictions) == INFERENCES
    for backend in ("c", "numpy"):
        host = _host_reference(name, f, backend)
        assert run.losses == host["losses"], (backend, run.output)
        assert run.predictions == host["predictions"], backend
        assert run.logits_fnv == host["logits_fnv"], backend
        assert run.checksum == host["checksum"], (backend, run.output)
    # The engine's arena holds no pointer: the 32-bit device uses exactly the bytes the 64-bit
    # host reports (persistent: engine tables, op data, variables; planned region; total).
    from tflm_train.engine_c import CEngine

    host = CEngine(tm.bytes)
    assert (run.arena_used, run.arena_persistent, run.arena_planned) == \
        (host.arena_bytes, host.persistent_bytes, host.planned_bytes), run.output
    assert run.arena_used <= f.arena_bytes
    assert run.stack_used < fw.STACK_BYTES
    assert all(n > 0 for n in run.step_instructions + run.inference_instructions)


def test_fpu_less_core_trains_identically(tmp_path):
    """Cortex-M3 (mps2-an385, soft float): the same bits with no FPU."""
    tm = _trainable("demo")
    f = fw.build_firmware(tm, cpu="cortex-m3", steps=STEPS["demo"], inferences=INFERENCES,
                          out_dir=tmp_path)
    run = f.run(timeout=300)
    assert run.ok, run.output
    host = _host_reference("demo", f, "c")
    assert (run.losses, run.checksum) == (host["losses"], host["checksum"])


def test_instruction_counter_is_calibrated_and_deterministic(tmp_path):
    f = fw.build_firmware(_trainable("demo"), cpu="cortex-m4", steps=2, out_dir=tmp_path)
    a, b = f.run(timeout=300), f.run(timeout=300)
    assert a.ok and b.ok
    # 2 instructions per loop iteration, 1 ns each under -icount shift=0, 25 MHz SysTick clock.
    assert a.instructions_per_tick == 40
    assert abs(a.calibration_ticks * 40 - 2 * a.calibration_loops) <= 40
    assert a.step_ticks == b.step_ticks and a.inference_ticks == b.inference_ticks
    # Training costs more than inference of the same graph (backward + updates).
    assert min(a.step_instructions) > max(a.inference_instructions)


def test_arena_over_256kb_fails_at_link_time(tmp_path):
    with pytest.raises(fw.FirmwareDoesNotFit, match=r"does not fit in 256 KB of RAM"):
        fw.build_firmware(_trainable("demo"), cpu="cortex-m4", steps=1, out_dir=tmp_path,
                          arena_bytes=300 * 1024)


def test_real_model_plan_over_256kb_does_not_link(tmp_path):
    """MobileNetV1 (VWW) with every layer trainable plans more than 256 KB: the link says so."""
    import tflm_train as tt
    from tflm_train.engine_c import CEngine

    tm = tt.convert(shared_model(VWW), update="full")
    assert CEngine(tm.bytes).arena_bytes > fw.RAM_BYTES
    with pytest.raises(fw.FirmwareDoesNotFit) as e:
        fw.build_firmware(tm, cpu="cortex-m7", steps=1, out_dir=tmp_path)
    assert "does not fit in 256 KB of RAM" in str(e.value)
    assert "overflowed by" in str(e.value)


def test_cross_build_werror_and_no_float_at_run_time():
    cores = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")
    helpers = fw.cross_check(cores)  # raises with the messages on any warning
    assert set(helpers) == set(cores)
    assert helpers["cortex-m4"] == {}  # hard-float build: no soft-float helpers at all
    r = fw.eval_float_calls("cortex-m3")
    # Roots: tt_engine_invoke and every op's eval, builtin and training ops.
    assert {"tt_engine_invoke", "tt_conv_2d_eval", "tt_train_mac_grad_eval"} <= set(r["eval_roots"])
    assert r["eval_functions"] > 50
    # Float on the run-time path only in QUANTIZE / DEQUANTIZE (float model edges).
    assert set(r["eval_float"]) <= {"tt_quantize", "tt_dequantize"}, r["eval_float"]
    # The search is not vacuous: prepare-time code does use float (fixed-point constants).
    assert "tt_quantize_multiplier" in r["prepare_float"]


def test_dsp_cores_use_the_dual_mac_path():
    """The conv kernel takes its SMLAD path on the cores with the DSP extension (M4, M7, M33)
    and its portable loops on the others; test_device_training_matches_host_bits checks that
    both give the host's bits."""
    for cpu, dsp in (("cortex-m4", True), ("cortex-m7", True), ("cortex-m33", True),
                     ("cortex-m3", False), ("cortex-m0plus", False)):
        b = fw._build(cpu)
        obj = next(o for s, o in zip(b.sources, b.objects) if s.name == "tt_conv_2d.c")
        text = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                              text=True, check=True).stdout
        assert ("smlad" in text) == dsp, cpu


def test_cli_firmware_run(tmp_path, capsys):
    from tflm_train.cli import main

    path = tmp_path / "demo.train.tflite"
    _trainable("demo").save(path)
    assert main(["firmware", str(path), "--cpu", "cortex-m7", "--steps", "2", "--run",
                 "-o", str(tmp_path / "fw")]) == 0
    out = capsys.readouterr().out
    assert "arm-none-eabi-size: text" in out and "per training step:" in out
    assert "instructions per SysTick tick" in out and "per MAC" in out
    f = fw.build_firmware(_trainable("demo"), cpu="cortex-m7", steps=2, out_dir=tmp_path / "b")
    host = fw.host_reference(_trainable("demo"), f.images, f.labels, f.inferences)
    assert f"0x{host['checksum']:08x}" in out


def test_profile_times_every_op_of_the_step(tmp_path, capsys):
    """--profile: the steps run op by op (tt_engine_invoke_ops), same losses and parameters as
    the host; one count per op, together the step (each op's count is exact to one 40-
    instruction tick; the step also pays the timer reads between ops)."""
    from tflm_train.cli import main

    tm = _trainable("demo")
    f = fw.build_firmware(tm, cpu="cortex-m7", steps=2, out_dir=tmp_path / "a", profile=True)
    r = f.run()
    host = fw.host_reference(tm, f.images, f.labels, f.inferences)
    assert r.losses == host["losses"] and r.checksum == host["checksum"]
    per_op = r.op_instructions
    assert len(per_op) == len(tm.graph.ops) and all(v >= 0 for v in per_op)
    step = float(np.mean(r.step_instructions))
    assert 0.9 * step <= sum(per_op) <= step + 40 * len(per_op)
    path = tmp_path / "demo.train.tflite"
    tm.save(path)
    assert main(["firmware", str(path), "--cpu", "cortex-m7", "--steps", "1", "--run",
                 "--profile", "--profile-top", "3", "-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("per op"):].splitlines()
    assert "3 costliest of" in table[0] and len(table) == 5, table
    assert main(["firmware", str(path), "--cpu", "cortex-m7", "--profile"]) == 2
    assert "--profile needs --run" in capsys.readouterr().err


def test_firmware_trains_on_given_samples(tmp_path):
    """--data: the firmware holds exactly the given int8 samples, cycled to the step count."""

    tm = _trainable("demo")
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(3, 28, 28, 1), dtype=np.int8)
    y = np.array([4, 0, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    f = fw.build_firmware(tm, cpu="cortex-m4", steps=5, data=tmp_path / "d.npz", out_dir=tmp_path)
    assert np.array_equal(f.images, x[[0, 1, 2, 0, 1]]) and list(f.labels) == [4, 0, 2, 4, 0]
    np.savez(tmp_path / "bad.npz", x=x, y=np.array([4, 0, 9]))
    with pytest.raises(fw.FirmwareError, match="label 9 at index 2 out of range"):
        fw.build_firmware(tm, cpu="cortex-m4", steps=1, data=tmp_path / "bad.npz",
                          out_dir=tmp_path)


def test_cross_check_fails_on_a_warning(tmp_path, monkeypatch):
    """The -Werror check is not vacuous: one warning in one file fails it, naming the file."""
    bad = tmp_path / "tt_bad.c"
    bad.write_text("int tt_bad(int x) { int unused; return x; }\n")
    monkeypatch.setattr(fw, "engine_sources", lambda: [bad])
    with pytest.raises(fw.FirmwareError, match=r"(?s)tt_bad\.c.*unused variable"):
        fw.cross_check(("cortex-m0plus",))
