"""The TFLM adapter (micro_ops/tflm/, docs/tflm.md).

CI has no TFLM: it checks what needs no TFLM headers — the C sources the adapter links
compile cleanly under TFLM's warning flags (also for Cortex-M when arm-none-eabi-gcc is
there) and need nothing from the C engine but the tt_op.h API the adapter implements; the
checkpoint checksum equals its Python twin; the micro_test's embedded expectations equal what
the C engine computes today; `tflm-train inspect` prints the arena the micro_test uses.
With a prepared TFLM checkout (env TFLM_SRC, default /work/tflm-src, with its third-party
downloads in place) it builds and runs the micro_test in TFLM's own make build.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MICRO_OPS = ROOT / "micro_ops"
TFLM_DIR = MICRO_OPS / "tflm"
sys.path.insert(0, str(TFLM_DIR / "tests"))
import make_test_data  # noqa: E402

# TFLM's CC_WARNINGS (tensorflow/lite/micro/tools/make/Makefile), made fatal.
TFLM_WARNINGS = ["-Wsign-compare", "-Wdouble-promotion", "-Wunused-variable",
                 "-Wunused-function", "-Wswitch", "-Wvla", "-Wall", "-Wextra",
                 "-Wmissing-field-initializers", "-Wstrict-aliasing", "-Wno-unused-parameter",
                 "-Wimplicit-function-declaration", "-Werror"]
# The tt_op.h functions the adapter (tt_tflm_ops.cc) implements in place of tt_engine.c.
ADAPTER_API = {"tt_tensor_scale", "tt_tensor_zero_point", "tt_op_index", "tt_op_num_inputs",
               "tt_op_num_outputs", "tt_op_input", "tt_op_output", "tt_op_option_i8",
               "tt_op_option_i32", "tt_op_option_f32", "tt_op_option_i32_vector",
               "tt_op_custom_i32", "tt_op_custom_find_i32", "tt_op_alloc_persistent",
               "tt_op_flash_quant", "tt_op_set_data", "tt_op_data", "tt_op_request_scratch",
               "tt_op_scratch", "tt_op_fail"}
PASS = "~~~ALL TESTS PASSED~~~"


def adapter_c_sources() -> list[Path]:
    """The C files Makefile_internal.inc lists (TT_TFLM_SRCS), expanded here."""
    inc = (TFLM_DIR / "Makefile_internal.inc").read_text()
    block = inc.split("TT_TFLM_SRCS := \\", 1)[1].split("\n\n", 1)[0]
    out: list[Path] = []
    for item in re.findall(r"\$\(TT_MICRO_OPS\)/([\w/*.]+)", block):
        if item.endswith(".c"):
            out += sorted(MICRO_OPS.glob(item))
    return out


def test_makefile_lists_the_glue_and_kernels_not_the_engine():
    srcs = {p.relative_to(MICRO_OPS).as_posix() for p in adapter_c_sources()}
    # every kernel and every training op's glue, and none of the engine's own runtime
    assert {f"kernels/{p.name}" for p in (MICRO_OPS / "kernels").glob("*.c")} <= srcs
    assert {f"engine/ops/{p.name}" for p in (MICRO_OPS / "engine/ops").glob("tt_op_train_*.c")} <= srcs
    assert not srcs & {"engine/tt_engine.c", "engine/tt_model.c", "engine/tt_planner.c",
                       "engine/tt_op_resolver.c"}


def _compile(cc: str, flags: list[str], tmp_path: Path) -> list[Path]:
    objs = []
    for src in adapter_c_sources():
        obj = tmp_path / (src.stem + ".o")
        r = subprocess.run([cc, *flags, *TFLM_WARNINGS, f"-I{MICRO_OPS / 'include'}",
                            f"-I{MICRO_OPS / 'engine'}", "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{cc} {src.name}:\n{r.stderr}"
        objs.append(obj)
    return objs


def test_c_parts_compile_and_need_only_the_adapter_api(tmp_path):
    """The adapter's C set compiles warning-free under TFLM's flags (C99 and TFLM's C17) and,
    linked together, leaves undefined only the tt_op.h functions the adapter defines."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    _compile("gcc", ["-std=c99", "-O2"], tmp_path)
    objs = _compile("gcc", ["-std=c17", "-Os", "-DTF_LITE_STATIC_MEMORY"], tmp_path)
    merged = tmp_path / "adapter_c.o"
    subprocess.run(["ld", "-r", "-o", str(merged), *map(str, objs)], check=True)
    nm = subprocess.run(["nm", "-u", str(merged)], capture_output=True, text=True, check=True)
    undefined = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    needed = {s for s in undefined if s.startswith("tt_")}
    assert needed <= ADAPTER_API, needed - ADAPTER_API  # nothing else from the C engine
    assert {"tt_op_input", "tt_op_output", "tt_op_custom_find_i32", "tt_op_alloc_persistent",
            "tt_op_fail"} <= needed
    # ... and tt_tflm_ops.cc defines every one of them
    cc = (TFLM_DIR / "tt_tflm_ops.cc").read_text()
    defined = set(re.findall(r"^[\w][\w\s\*]*?\b(tt_\w+)\(.*\)\s*\{", cc, re.M))
    assert ADAPTER_API <= defined, ADAPTER_API - defined


def test_c_parts_compile_for_cortex_m(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    _compile("arm-none-eabi-gcc", ["-std=c17", "-Os", "-mcpu=cortex-m4", "-mthumb"], tmp_path)


def test_checkpoint_checksum_equals_python(tmp_path, rng):
    """The micro_test compares TFLM's tt_fnv1a with checksums computed in Python."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    lib = tmp_path / "libckpt.so"
    subprocess.run(["gcc", "-std=c99", "-shared", "-fPIC", *TFLM_WARNINGS,
                    str(TFLM_DIR / "tt_checkpoint.c"), "-o", str(lib)], check=True)
    c = ctypes.CDLL(str(lib))
    c.tt_fnv1a.restype = ctypes.c_uint32
    c.tt_fnv1a.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    for n in (0, 1, 7, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert c.tt_fnv1a(0x811C9DC5, data, n) == make_test_data.fnv1a(data)
    words = (ctypes.c_uint32 * 4)()
    c.tt_checkpoint_header(3, 100, words)
    assert bytes(words)[:4] == b"TTCK"
    c.tt_checkpoint_header_matches.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
    assert c.tt_checkpoint_header_matches(words, 3, 100) == 1
    assert c.tt_checkpoint_header_matches(words, 3, 101) == 0


def test_micro_test_expectations_are_the_engines():
    """The values the micro_test checks TFLM against are what the C engine computes now."""
    head, body = make_test_data.render(make_test_data.compute())
    assert (TFLM_DIR / "tests" / "tt_tflm_test_data.h").read_text() == head, \
        "stale: run micro_ops/tflm/tests/make_test_data.py"
    assert (TFLM_DIR / "tests" / "tt_tflm_test_data.cc").read_text() == body, \
        "stale: run micro_ops/tflm/tests/make_test_data.py"


def test_inspect_prints_the_tflm_arena_the_micro_test_uses(tmp_path, capsys):
    from tflm_train.cli import main
    from tflm_train.tflm_arena import tflm_arena_bytes

    path = tmp_path / "m.train.tflite"
    d = make_test_data.compute()
    path.write_bytes(d["model"])
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    m = re.search(r"TFLM arena: (\d+) bytes", out)
    assert m, out
    arena = int(m.group(1))
    assert arena == tflm_arena_bytes(d["model"])
    src = (TFLM_DIR / "tests" / "tt_tflm_train_test.cc").read_text()
    assert f"#define TT_TEST_ARENA_BYTES {arena}" in src


def _tflm_tree() -> Path:
    src = Path(os.environ.get("TFLM_SRC", "/work/tflm-src"))
    if not (src / "tensorflow/lite/micro/tools/make/Makefile").exists():
        pytest.skip(f"no TFLM checkout at {src} (set TFLM_SRC): the TFLM build is not run")
    dl = src / "tensorflow/lite/micro/tools/make/downloads"
    missing = [d for d in ("flatbuffers", "gemmlowp", "ruy", "kissfft", "pigweed")
               if not (dl / d).is_dir()]
    if missing:
        pytest.skip(f"TFLM checkout {src} lacks third-party downloads {missing} under {dl} "
                    "(docs/tflm.md, 'Building TFLM offline')")
    if not os.access(src, os.W_OK):
        pytest.skip(f"TFLM checkout {src} is read-only (its make build writes gen/)")
    return src


def test_micro_test_passes_in_tflm():
    """Training in MicroInterpreter gives the C engine's losses, logits and checksum."""
    src = _tflm_tree()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    r = subprocess.run(["make", "-f", "tensorflow/lite/micro/tools/make/Makefile",
                        f"-j{os.cpu_count() or 1}", f"EXTERNAL_DIR={MICRO_OPS}",
                        "test_tt_tflm_train_test"],
                       cwd=src, env=env, capture_output=True, text=True, timeout=3600)
    print(r.stdout[-4000:], r.stderr[-4000:])
    assert r.returncode == 0 and PASS in r.stdout
