"""Bare-metal Cortex-M firmware that trains a ``*.train.tflite`` on the device, and its QEMU run.

    fw = build_firmware("model.train.tflite", cpu="cortex-m4", steps=3, out_dir="fw")
    fw.text, fw.data, fw.bss                 # arm-none-eabi-size of the ELF
    run = fw.run()                           # qemu-system-arm -M mps2-an386 -icount shift=0
    run.losses, run.checksum                 # Q16.16 loss per step, FNV-1a of the parameters
    run.step_instructions, run.inference_instructions
    build_firmware(..., profile=True).run().op_instructions   # per op of a training step

The generated C file (``tt_firmware_main.c``) holds the model (16-byte aligned, ``const`` so it
stays in flash), N samples with labels (given samples are stored in flash; the default noise
images are computed on the device by the C twin of ``synthetic_images``), and a ``main()`` that
creates the C engine in a static arena sized from the host's ``CEngine(...).arena_bytes``, runs
N training steps printing the loss of each, then inferences, then a checksum of every variable
tensor (trainable parameters and ``tt_state``). It links with
``micro_ops/targets/cortex_m/cortex_m.ld`` (FLASH 1 MB, RAM 256 KB): a program that needs more
RAM does not link (``FirmwareDoesNotFit``).

Cost: under ``-icount shift=0`` QEMU advances virtual time by 1 ns per instruction, and SysTick
counts the 25 MHz processor clock of the mps2 boards in virtual time, so one tick is 40
instructions. The firmware measures that factor on a loop of known length (``subs``/``bne``,
2 instructions per iteration) before anything else; counts are exact to one tick (40
instructions). They are instructions, not cycles.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TflmTrainError

ROOT = Path(__file__).resolve().parents[1]
MICRO_OPS = ROOT / "micro_ops"
TARGET_DIR = MICRO_OPS / "targets" / "cortex_m"
LINKER_SCRIPT = TARGET_DIR / "cortex_m.ld"
GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
FLASH_BYTES = 1 << 20
RAM_BYTES = 256 * 1024
STACK_BYTES = 8 * 1024
CALIBRATION_LOOPS = 100_000  # 200 000 instructions
ARENA_ROUND = 16

# Code-generation flags per core. The FPU-less cores (M0+, M3) use soft float: only
# prepare-time code may call the soft-float library.
CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mfloat-abi=soft"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mfloat-abi=soft"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
}
# QEMU boards (bare metal, semihosting), all with the memory map of cortex_m.ld. The M3 board
# (FPU-less, soft float) shows the training step needs no FPU.
QEMU_MACHINES = {"cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500"}
# -std=c99 (not gnu99) keeps floating-point contraction off, so prepare-time float code
# rounds exactly as on the host.
C_FLAGS = ["-mthumb", "-O2", "-std=c99", "-ffp-contract=off", "-ffunction-sections",
           "-fdata-sections", "-Wall", "-Wextra"]


class FirmwareError(TflmTrainError):
    """The cross build or the QEMU run failed."""


class FirmwareDoesNotFit(FirmwareError):
    """The link failed because the program exceeds the device's RAM (or flash)."""


def missing_tools(run: bool = True) -> str | None:
    """Why the firmware cannot be built (and run), or None when the tools are installed."""
    missing = [t for t in ([GCC] + ([QEMU] if run else [])) if shutil.which(t) is None]
    if missing:
        return (f"{' and '.join(missing)} not found (Debian packages gcc-arm-none-eabi, "
                f"libnewlib-arm-none-eabi, qemu-system-arm; `make deps` installs them)")
    return None


def _check_cpu(cpu: str, need_qemu: bool = False) -> None:
    known = QEMU_MACHINES if need_qemu else CPU_FLAGS
    if cpu not in known:
        raise FirmwareError(f"cpu {cpu!r} is not supported{' under QEMU' if need_qemu else ''}: "
                            f"choose one of {', '.join(known)}")


def engine_sources() -> list[Path]:
    """Every C file of the engine and kernels (what setup.py builds for the host)."""
    return sorted(list((MICRO_OPS / "kernels").glob("*.c")) + list((MICRO_OPS / "engine").glob("*.c"))
                  + list((MICRO_OPS / "engine" / "ops").glob("*.c")))


def target_sources() -> list[Path]:
    return sorted(TARGET_DIR.glob("*.c"))


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _run(cmd: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise FirmwareError(f"{what}: {e.filename} not found ({missing_tools()})") from e
    except subprocess.TimeoutExpired as e:
        raise FirmwareError(f"{what}: timed out after {timeout} s") from e
    return p


def _compile(cpu: str, sources: list[Path], out_dir: Path, werror: bool = False
             ) -> list[tuple[Path, subprocess.CompletedProcess]]:
    _check_cpu(cpu)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = CPU_FLAGS[cpu] + C_FLAGS + (["-Werror"] if werror else []) + [
        f"-I{MICRO_OPS / 'include'}", f"-I{TARGET_DIR}"]

    def one(src: Path) -> tuple[Path, subprocess.CompletedProcess]:
        obj = out_dir / (_rel(src).strip("/").replace("/", "__").removesuffix(".c") + ".o")
        return obj, _run([GCC, *flags, "-c", str(src), "-o", str(obj)], f"compile {src}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(one, sources))


def _failures(cpu: str, sources, results, strict: bool) -> None:
    errors = [f"{src}:\n{p.stderr.strip()}" for src, (_, p) in zip(sources, results)
              if p.returncode != 0 or (strict and p.stderr.strip())]
    if errors:
        raise FirmwareError(f"{GCC} for {cpu} failed on {len(errors)} file(s):\n"
                            + "\n".join(errors))


def compile_objects(cpu: str, sources: list[Path], out_dir: Path, werror: bool = False
                    ) -> list[Path]:
    """Compile each source for cpu into out_dir (in parallel); FirmwareError on any failure,
    with the compiler's messages."""
    results = _compile(cpu, sources, out_dir, werror)
    _failures(cpu, sources, results, werror)
    return [obj for obj, _ in results]


def undefined_float_helpers(obj: Path) -> list[str]:
    """Floating-point helpers (soft-float __aeabi_* calls, libm) an object calls."""
    p = _run(["arm-none-eabi-nm", "-u", str(obj)], f"nm {obj}")
    names = [line.split()[-1] for line in p.stdout.splitlines() if line.strip()]
    return sorted(n for n in names if _FLOAT_HELPER.match(n))


def cross_check(cpus=tuple(CPU_FLAGS)) -> dict[str, dict[str, list[str]]]:
    """Every engine/kernel C file and the Cortex-M support, built for each core with
    -Wall -Wextra (the firmware library, cached): any compiler diagnostic raises FirmwareError
    with the messages — exactly what -Werror does. Returns {cpu: {source: soft-float helpers it
    calls}} for the soft-float cores (files without any omitted)."""
    result = {}
    for cpu in cpus:
        b = _build(cpu)
        if b.diagnostics:
            raise FirmwareError(f"{GCC} for {cpu}: warnings (-Werror fails) in "
                                f"{len(b.diagnostics)} file(s):\n"
                                + "\n".join(f"{k}:\n{v}" for k, v in b.diagnostics.items()))
        helpers = {}
        if "-mfloat-abi=soft" in CPU_FLAGS[cpu]:
            for src, obj in zip(b.sources, b.objects):
                h = undefined_float_helpers(obj)
                if h:
                    helpers[_rel(src)] = h
        result[cpu] = helpers
    return result


_FLOAT_HELPER = re.compile(r"^__aeabi_(d|f|[ui]?l?2[df]|[df]2|cfcmp|cdcmp|cfrcmp|cdrcmp)|"
                           r"^(sqrtf?|expf?|logf?|powf?|frexpf?|ldexpf?|floorf?|ceilf?|roundf?|"
                           r"fabsf?|lroundf?)$")


def _relocation_graph(objs: list[Path]) -> dict[str, set[str]]:
    """section (function name, or a data section name) -> symbols its relocations reference,
    over all objects (built with -ffunction-sections -fdata-sections)."""
    graph: dict[str, set[str]] = {}
    for obj in objs:
        p = _run(["arm-none-eabi-readelf", "-rW", str(obj)], f"readelf {obj}")
        node = None
        for line in p.stdout.splitlines():
            m = re.match(r"Relocation section '\.rel\.(\S+)'", line)
            if m:
                sec = m.group(1)
                node = sec[len("text."):] if sec.startswith("text.") else "." + sec
                graph.setdefault(node, set())
                continue
            f = line.split()
            if node is None or len(f) < 5 or not f[2].startswith("R_ARM_"):
                continue
            sym = f[-1]
            graph[node].add(sym[len(".text."):] if sym.startswith(".text.") else sym)
    return graph


def eval_float_calls(cpu: str = "cortex-m3") -> dict:
    """Static check that run-time code calls no floating-point helper on an FPU-less core.

    Builds every engine/kernel file for cpu (soft float), follows the call/relocation graph
    from tt_engine_invoke and from every op registration's eval() (the fourth field), and
    returns {"eval_functions": N, "eval_float": {function: [helpers]} (must be empty),
    "prepare_float": {function: [helpers]} (float only in prepare-time code)}."""
    if "-mfloat-abi=soft" not in CPU_FLAGS[cpu]:
        raise FirmwareError(f"{cpu} has an FPU in this build: use cortex-m0plus or cortex-m3")
    b = _build(cpu)
    objs = b.objects[:len(engine_sources())]
    graph = _relocation_graph(objs)
    roots = {"tt_engine_invoke"}
    for obj in objs:
        p = _run(["arm-none-eabi-readelf", "-rW", str(obj)], f"readelf {obj}")
        sec = None
        for line in p.stdout.splitlines():
            m = re.match(r"Relocation section '\.rel\.rodata\.(tt_op_\w+)'", line)
            if m or line.startswith("Relocation section"):
                sec = m.group(1) if m else None
                continue
            f = line.split()
            if sec and len(f) >= 5 and f[0] == "0000000c":  # tt_op_registration.eval
                roots.add(f[-1])
    seen, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(graph.get(n, ()))
    floats = {n: sorted(x for x in refs if _FLOAT_HELPER.match(x)) for n, refs in graph.items()}
    floats = {n: v for n, v in floats.items() if v}
    return {"eval_roots": sorted(roots), "eval_functions": len(seen),
            "eval_float": {n: v for n, v in floats.items() if n in seen},
            "prepare_float": {n: v for n, v in floats.items() if n not in seen}}


@dataclass
class _Build:
    library: Path              # engine + kernels
    target_objects: list[Path]  # startup, system calls: linked as objects so libc finds them
    sources: list[Path]        # engine then target sources ...
    objects: list[Path]        # ... and their objects, in the same order
    diagnostics: dict[str, str]  # source -> compiler warnings (none expected)


_BUILD_CACHE: dict[tuple, _Build] = {}


def _build(cpu: str) -> _Build:
    """Compile the engine, kernels and target support for cpu; cached per process by the
    sources' content."""
    _check_cpu(cpu)
    engine, target = engine_sources(), target_sources()
    h = hashlib.sha256()
    for s in engine + target + sorted((MICRO_OPS / "include").glob("*.h")) \
            + sorted(TARGET_DIR.glob("*.h")) + sorted((MICRO_OPS / "engine").glob("**/*.h")):
        h.update(str(s).encode())
        h.update(s.read_bytes())
    key = (cpu, h.hexdigest())
    hit = _BUILD_CACHE.get(key)
    if hit is not None and hit.library.is_file() and all(o.is_file() for o in hit.objects):
        return hit
    d = Path(tempfile.mkdtemp(prefix=f"tt_lib_{cpu}_"))
    results = _compile(cpu, engine + target, d)
    _failures(cpu, engine + target, results, strict=False)
    objs = [o for o, _ in results]
    lib = d / "libtt_engine.a"
    p = _run(["arm-none-eabi-ar", "rcs", str(lib), *map(str, objs[:len(engine)])], "ar")
    if p.returncode != 0:
        raise FirmwareError(f"arm-none-eabi-ar failed: {p.stderr.strip()}")
    diags = {_rel(src): r.stderr.strip()
             for src, (_, r) in zip(engine + target, results) if r.stderr.strip()}
    _BUILD_CACHE[key] = _Build(lib, objs[len(engine):], engine + target, objs, diags)
    return _BUILD_CACHE[key]


def build_library(cpu: str) -> tuple[Path, list[Path]]:
    """(static library of the engine and kernels, objects of the target support) for cpu."""
    b = _build(cpu)
    return b.library, b.target_objects


# ------------------------------------------------------------------------------ generation
def _c_bytes(data: bytes, indent: str = "  ") -> str:
    lines = []
    for i in range(0, len(data), 20):
        lines.append(indent + ",".join(str(b) for b in data[i:i + 20]) + ",")
    return "\n".join(lines) if lines else indent + "0"


def _fnv1a(h: int, data: bytes) -> int:
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


FNV_OFFSET = 2166136261


def variables_checksum(tensors) -> int:
    """FNV-1a 32 over the bytes of every variable tensor in index order — what the firmware
    prints. tensors: iterable of numpy arrays (the variables' current values)."""
    h = FNV_OFFSET
    for t in tensors:
        h = _fnv1a(h, np.ascontiguousarray(t).tobytes())
    return h


def samples_for(trainable, steps: int, data=None, seed: int = 0):
    """(images int8 [steps, *image shape[1:]], labels int32 [steps]): from data (a DATA spec as
    for `tflm-train fit`, an .npz of int8 x / y, or an (x, y) tuple) cycled to `steps`, or
    deterministic random int8 images with random labels."""
    g = trainable.graph
    image = g.tensors[g.inputs[0]]
    num_classes = int(g.tensors[g.outputs[0]].shape[-1])
    if image.dtype not in (np.int8, np.uint8):
        raise FirmwareError(f"the firmware feeds int8 images; the model's input is "
                            f"{image.dtype.name}")
    shape = tuple(image.shape[1:])
    if data is None:
        x = synthetic_images(steps, shape, seed)
        y = np.random.default_rng(seed).integers(0, num_classes, size=steps).astype(np.int32)
        return x, y
    x = None
    if isinstance(data, tuple):
        x, y = data
    elif str(data).endswith(".npz") and Path(data).is_file():
        with np.load(data) as d:  # int8 samples already quantized for this input: as is
            if "x" in d and "y" in d and d["x"].dtype == np.int8:
                x, y = d["x"], d["y"]
    if x is None:
        from .data import fit_to_input, load_data

        x, y = load_data(str(data))
        x = fit_to_input(x, image)
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) == 0:
        raise FirmwareError(f"{data}: no samples")
    if x[0].size != int(np.prod(shape)):
        raise FirmwareError(f"{data}: samples of shape {list(x.shape[1:])} do not match the "
                            f"model input {list(shape)}")
    x = x.reshape((len(x),) + shape).astype(image.dtype)
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        raise FirmwareError(f"{data}: label {int(y[bad[0]])} at index {int(bad[0])} out of range "
                            f"(the model has {num_classes} classes)")
    idx = np.arange(steps) % len(x)
    return np.ascontiguousarray(x[idx]), y[idx].astype(np.int32)


def _lowbias32(x: np.ndarray) -> np.ndarray:
    """A 32-bit integer hash (C twin: tt_fw_hash in the generated firmware)."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def synthetic_images(count: int, shape: tuple, seed: int = 0) -> np.ndarray:
    """Deterministic int8 noise images: byte k of image i is the top byte of
    hash(seed * 0x9E3779B9 + i * image_bytes + k). The firmware computes the same bytes on the
    device instead of storing them (a 128x128x3 image is 48 KB of flash)."""
    n = int(np.prod(shape, dtype=np.int64))
    base = np.uint32((seed * 0x9E3779B9) & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        k = (np.arange(count * n, dtype=np.uint64) & 0xFFFFFFFF).astype(np.uint32) + base
        x = (_lowbias32(k) >> np.uint32(24)).astype(np.uint8).view(np.int8)
    return x.reshape((count,) + tuple(shape))


def generate_main(model_bytes: bytes, arena_bytes: int, images: np.ndarray, labels: np.ndarray,
                  inferences: int, name: str = "model", synthetic_seed: int | None = None,
                  profile_ops: int = 0) -> str:
    """The firmware's C source. With synthetic_seed the images are not stored but computed on
    the device (``synthetic_images(len(images), ..., synthetic_seed)``, the same bytes). With
    profile_ops (the graph's op count) the training steps run op by op, each timed, and the
    firmware prints every op's ticks summed over the steps."""
    steps = len(labels)
    inferences = min(inferences, len(images)) if len(images) else 0
    image_bytes = int(images[0].nbytes) if len(images) else 1
    if synthetic_seed is None:
        img_rows = ",\n".join("  {\n" + _c_bytes(im.astype(np.int8).tobytes(), "    ") + "\n  }"
                              for im in images) or "  {0}"
        image_src = (f"static const int8_t tt_fw_images[{max(len(images), 1)}][TT_FW_IMAGE_BYTES] = "
                     f"{{\n{img_rows}\n}};\n\n"
                     "static void tt_fw_image(uint32_t sample, int8_t *dst) {\n"
                     "  memcpy(dst, tt_fw_images[sample], TT_FW_IMAGE_BYTES);\n}")
    else:
        base = (int(synthetic_seed) * 0x9E3779B9) & 0xFFFFFFFF
        image_src = f"""/* Synthetic images, computed rather than stored: tflm_train.firmware.synthetic_images. */
static uint32_t tt_fw_hash(uint32_t x) {{
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}}

static void tt_fw_image(uint32_t sample, int8_t *dst) {{
  const uint32_t k0 = {base}u + sample * TT_FW_IMAGE_BYTES;
  for (uint32_t k = 0; k < TT_FW_IMAGE_BYTES; ++k) dst[k] = (int8_t)(tt_fw_hash(k0 + k) >> 24);
}}"""
    return f"""/* Generated by tflm_train.firmware for {name}: {steps} training steps, {inferences} \
inferences.
 * Output lines (parsed by tflm_train.firmware.parse_output):
 *   calibrate LOOPS TICKS | arena USED PERSISTENT PLANNED STATIC | step I LOSS TICKS
 *   op I TICKS (with a profile: op I's ticks summed over the steps)
 *   infer I CLASS LOGITS_FNV TICKS | checksum FNV VARIABLES BYTES | stack USED SIZE | done */
#include <stdint.h>
#include <string.h>

#include "tt_cortex_m.h"
#include "tt_engine.h"

#define TT_FW_ARENA_BYTES {arena_bytes}u
#define TT_FW_STEPS {steps}
#define TT_FW_INFERENCES {inferences}
#define TT_FW_IMAGE_BYTES {image_bytes}u
#define TT_FW_CALIBRATION_LOOPS {CALIBRATION_LOOPS}u
#define TT_FW_PROFILE_OPS {int(profile_ops)} /* 0: no per-op profile */

/* const: stays in flash, read in place by the engine. */
__attribute__((aligned(16))) static const uint8_t tt_fw_model[{len(model_bytes)}] = {{
{_c_bytes(model_bytes)}
}};
{image_src}
static const int32_t tt_fw_labels[{max(steps, 1)}] = {{{", ".join(str(int(v)) for v in labels) or "0"}}};

/* The engine's arena: its state, op data, trainable parameters and planned buffers. */
__attribute__((aligned(16))) static uint8_t tt_fw_arena[TT_FW_ARENA_BYTES];

static uint32_t tt_fw_fnv1a(uint32_t h, const uint8_t *p, uint32_t n) {{
  for (uint32_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}}

#if TT_FW_PROFILE_OPS
static uint64_t tt_fw_op_ticks[TT_FW_PROFILE_OPS]; /* per op, summed over the training steps */

/* A training step op by op, each timed; its total is the sum (plus the timer reads). */
static tt_status tt_fw_invoke_profiled(tt_engine *e) {{
  tt_status s = TT_OK;
  for (int32_t i = 0; i < tt_engine_num_ops(e) && i < TT_FW_PROFILE_OPS && s == TT_OK; ++i) {{
    const uint64_t t0 = tt_cm_ticks();
    s = tt_engine_invoke_ops(e, i, 1);
    tt_fw_op_ticks[i] += tt_cm_ticks() - t0;
  }}
  return s;
}}
#endif

static uint64_t tt_fw_invoke(tt_engine *e, uint32_t sample, int32_t label) {{
  tt_tensor view;
  tt_fw_image(sample, (int8_t *)tt_engine_input(e, 0, &view)->data);
  *(int32_t *)tt_engine_input(e, 1, &view)->data = label;
  const uint64_t t0 = tt_cm_ticks();
#if TT_FW_PROFILE_OPS
  const tt_status s = label >= 0 ? tt_fw_invoke_profiled(e) : tt_engine_invoke(e);
#else
  const tt_status s = tt_engine_invoke(e);
#endif
  const uint64_t t1 = tt_cm_ticks();
  if (s != TT_OK) {{
    tt_cm_printf("error invoke %s: %s\\n", tt_status_name(s), tt_engine_error(e));
    tt_cm_exit(2);
  }}
  return t1 - t0;
}}

int main(void) {{
  char num[24];
  tt_cm_stack_paint();
  tt_cm_counter_start();
  tt_cm_printf("calibrate %lu %s\\n", (unsigned long)TT_FW_CALIBRATION_LOOPS,
               tt_cm_u64(tt_cm_calibrate(TT_FW_CALIBRATION_LOOPS), num));

  char err[256];
  tt_tensor view;
  tt_engine *e = NULL;
  const tt_status s = tt_engine_create(tt_fw_model, sizeof tt_fw_model, tt_fw_arena,
                                       sizeof tt_fw_arena, &e, err, sizeof err);
  if (s != TT_OK) {{
    tt_cm_printf("error create %s: %s\\n", tt_status_name(s), err);
    return 1;
  }}
  tt_cm_printf("arena %lu %lu %lu %lu\\n", (unsigned long)tt_engine_arena_used(e),
               (unsigned long)tt_engine_arena_persistent(e),
               (unsigned long)tt_engine_arena_planned(e), (unsigned long)TT_FW_ARENA_BYTES);
  if (tt_engine_num_inputs(e) != 2 || tt_engine_num_outputs(e) != 2 ||
      tt_engine_input(e, 0, &view)->bytes != TT_FW_IMAGE_BYTES) {{
    tt_cm_printf("error model: expected a training graph (image, label) -> (logits, loss)\\n");
    return 1;
  }}

  for (uint32_t i = 0; i < TT_FW_STEPS; ++i) {{
    const uint64_t t = tt_fw_invoke(e, i, tt_fw_labels[i]);
    tt_cm_printf("step %lu %ld %s\\n", (unsigned long)i,
                 (long)*(const int32_t *)tt_engine_output(e, 1, &view)->data, tt_cm_u64(t, num));
  }}
#if TT_FW_PROFILE_OPS
  for (int32_t i = 0; i < TT_FW_PROFILE_OPS; ++i) {{
    tt_cm_printf("op %ld %s\\n", (long)i, tt_cm_u64(tt_fw_op_ticks[i], num));
  }}
#endif
  for (uint32_t i = 0; i < TT_FW_INFERENCES; ++i) {{
    const uint64_t t = tt_fw_invoke(e, i, -1); /* no label: backward ops skip */
    const tt_tensor *logits = tt_engine_output(e, 0, &view);
    const int8_t *z = (const int8_t *)logits->data;
    uint32_t best = 0;
    for (uint32_t c = 1; c < logits->bytes; ++c)
      if (z[c] > z[best]) best = c;
    tt_cm_printf("infer %lu %lu 0x%08lx %s\\n", (unsigned long)i, (unsigned long)best,
                 (unsigned long)tt_fw_fnv1a(2166136261u, logits->data, logits->bytes),
                 tt_cm_u64(t, num));
  }}

  uint32_t h = 2166136261u, count = 0, bytes = 0;
  for (int32_t i = 0; i < tt_engine_num_tensors(e); ++i) {{
    const tt_tensor *t = tt_engine_tensor(e, i, &view);
    if (t != NULL && t->is_variable) {{
      h = tt_fw_fnv1a(h, t->data, t->bytes);
      ++count;
      bytes += t->bytes;
    }}
  }}
  tt_cm_printf("checksum 0x%08lx %lu %lu\\n", (unsigned long)h, (unsigned long)count,
               (unsigned long)bytes);
  tt_cm_printf("stack %lu %lu\\n", (unsigned long)tt_cm_stack_used(),
               (unsigned long)tt_cm_stack_size());
  tt_cm_printf("done\\n");
  return 0;
}}
"""


# ------------------------------------------------------------------------------ results
@dataclass
class FirmwareRun:
    """What the firmware printed under QEMU, parsed."""

    cpu: str
    machine: str
    exit_code: int
    output: str
    losses: list[int] = field(default_factory=list)          # Q16.16 nats per step
    step_ticks: list[int] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    logits_fnv: list[int] = field(default_factory=list)
    inference_ticks: list[int] = field(default_factory=list)
    op_ticks: list[int] = field(default_factory=list)      # --profile: per op, all steps
    checksum: int | None = None
    variables: int = 0
    variable_bytes: int = 0
    arena_used: int | None = None
    arena_persistent: int | None = None  # the engine's tables, op data and variables
    arena_planned: int | None = None
    arena_static: int | None = None
    stack_used: int | None = None
    calibration_loops: int = 0
    calibration_ticks: int = 0

    @property
    def instructions_per_tick(self) -> int:
        """Instructions per SysTick tick measured on the calibration loop (2 per iteration)."""
        if not self.calibration_ticks:
            raise FirmwareError("the firmware printed no calibration line")
        return round(2 * self.calibration_loops / self.calibration_ticks)

    @property
    def step_instructions(self) -> list[int]:
        return [t * self.instructions_per_tick for t in self.step_ticks]

    @property
    def inference_instructions(self) -> list[int]:
        return [t * self.instructions_per_tick for t in self.inference_ticks]

    @property
    def op_instructions(self) -> list[float]:
        """Per op of the training graph: instructions per training step (profiled builds)."""
        steps = max(len(self.step_ticks), 1)
        return [t * self.instructions_per_tick / steps for t in self.op_ticks]

    @property
    def loss_values(self) -> list[float]:
        return [v / 65536.0 for v in self.losses]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and "done" in self.output.split()


def parse_output(text: str, run: FirmwareRun) -> FirmwareRun:
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "calibrate" and len(f) == 3:
            run.calibration_loops, run.calibration_ticks = int(f[1]), int(f[2])
        elif f[0] == "arena" and len(f) == 5:
            run.arena_used, run.arena_persistent, run.arena_planned, run.arena_static = \
                map(int, f[1:5])
        elif f[0] == "step" and len(f) == 4:
            run.losses.append(int(f[2]))
            run.step_ticks.append(int(f[3]))
        elif f[0] == "op" and len(f) == 3:
            run.op_ticks.append(int(f[2]))
        elif f[0] == "infer" and len(f) == 5:
            run.predictions.append(int(f[2]))
            run.logits_fnv.append(int(f[3], 16))
            run.inference_ticks.append(int(f[4]))
        elif f[0] == "checksum" and len(f) == 4:
            run.checksum = int(f[1], 16)
            run.variables, run.variable_bytes = int(f[2]), int(f[3])
        elif f[0] == "stack" and len(f) == 3:
            run.stack_used = int(f[1])
    return run


@dataclass
class Firmware:
    """A built firmware ELF."""

    cpu: str
    elf: Path
    source: Path
    text: int
    data: int
    bss: int
    arena_bytes: int
    model_bytes: int
    steps: int
    inferences: int
    images: np.ndarray   # the samples in the firmware (training cycles over the first `steps`)
    labels: np.ndarray   # one per training step

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        """.data + .bss (arena included) + the reserved stack: what the link checks."""
        return self.data + self.bss

    def run(self, timeout: float = 600.0, icount: bool = True) -> FirmwareRun:
        return run_firmware(self.elf, self.cpu, timeout=timeout, icount=icount)


def _size(elf: Path) -> tuple[int, int, int]:
    p = _run(["arm-none-eabi-size", "-A", str(elf)], "arm-none-eabi-size")
    if p.returncode != 0:
        raise FirmwareError(f"arm-none-eabi-size failed: {p.stderr.strip()}")
    p2 = _run(["arm-none-eabi-size", str(elf)], "arm-none-eabi-size")
    nums = p2.stdout.splitlines()[-1].split()
    return int(nums[0]), int(nums[1]), int(nums[2])


def _link_error(stderr: str, arena: int) -> FirmwareError:
    m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", stderr)
    if m or "does not fit" in stderr:
        region = m.group(1) if m else ("RAM" if "RAM" in stderr else "FLASH")
        over = f" by {int(m.group(2))} bytes" if m else ""
        budget = f"{RAM_BYTES // 1024} KB of RAM" if region == "RAM" \
            else f"{FLASH_BYTES // 1024} KB of flash"
        return FirmwareDoesNotFit(
            f"the program does not fit in {budget}: {region} overflowed{over} (engine arena "
            f"{arena} bytes + .data + {STACK_BYTES // 1024} KB stack).\nLinker said:\n"
            + stderr.strip())
    return FirmwareError(f"link failed:\n{stderr.strip()}")


def build_firmware(model, cpu: str = "cortex-m4", steps: int = 10, data=None,
                   out_dir=None, inferences: int = 2, seed: int = 0,
                   arena_bytes: int | None = None, profile: bool = False) -> Firmware:
    """Generate and cross-build the firmware for a trainable model (path, bytes or
    TrainableModel). The arena is the host C engine's arena_bytes rounded up to 16. profile:
    time every op of the training steps (``FirmwareRun.op_instructions``)."""
    from .engine_c import CEngine
    from .trainable import TrainableModel, load_trainable

    _check_cpu(cpu)
    reason = missing_tools(run=False)
    if reason:
        raise FirmwareError(reason)
    tm = model if isinstance(model, TrainableModel) else load_trainable(model)
    if steps < 0:
        raise FirmwareError(f"steps must be >= 0, got {steps}")
    if arena_bytes is None:
        arena_bytes = CEngine(tm.bytes).arena_bytes
    arena_bytes = -(-int(arena_bytes) // ARENA_ROUND) * ARENA_ROUND
    images, labels = samples_for(tm, max(steps, inferences, 1), data, seed)
    labels = labels[:steps]
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="tt_fw_"))
    out.mkdir(parents=True, exist_ok=True)
    src = out / "tt_firmware_main.c"
    src.write_text(generate_main(tm.bytes, arena_bytes, images, labels, inferences,
                                 name=str(tm.metadata.get("source") or "model"),
                                 synthetic_seed=seed if data is None else None,
                                 profile_ops=len(tm.graph.ops) if profile else 0))
    lib, target_objs = build_library(cpu)
    elf = out / f"firmware_{cpu}.elf"
    flags = CPU_FLAGS[cpu] + C_FLAGS + [f"-I{MICRO_OPS / 'include'}", f"-I{TARGET_DIR}"]
    cmd = [GCC, *flags, "--specs=nano.specs", "-nostartfiles", f"-T{LINKER_SCRIPT}",
           "-Wl,--gc-sections", f"-Wl,-Map={out / f'firmware_{cpu}.map'}",
           f"-Wl,--defsym=__stack_size={STACK_BYTES}", str(src), *map(str, target_objs), str(lib), "-lm", "-o", str(elf)]
    p = _run(cmd, "build firmware")
    if p.returncode != 0:
        raise _link_error(p.stderr, arena_bytes)
    text, dat, bss = _size(elf)
    return Firmware(cpu, elf, src, text, dat, bss, arena_bytes, len(tm.bytes), steps,
                    min(inferences, len(images)), images, labels)


def qemu_command(elf, cpu: str, icount: bool = True) -> list[str]:
    _check_cpu(cpu, need_qemu=True)
    cmd = [QEMU, "-M", QEMU_MACHINES[cpu], "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if icount:
        cmd[1:1] = ["-icount", "shift=0"]
    return cmd


def run_firmware(elf, cpu: str, timeout: float = 600.0, icount: bool = True) -> FirmwareRun:
    """Run an ELF on the QEMU board of cpu; the exit status is the firmware's."""
    reason = missing_tools()
    if reason:
        raise FirmwareError(reason)
    cmd = qemu_command(elf, cpu, icount)
    p = _run(cmd, f"{QEMU} {QEMU_MACHINES[cpu]}", timeout=timeout)
    run = FirmwareRun(cpu, QEMU_MACHINES[cpu], p.returncode, p.stdout + p.stderr)
    return parse_output(run.output, run)


# ------------------------------------------------------------------------------ host side
def host_reference(model, images, labels, inferences: int = 2, backend: str = "c") -> dict:
    """What the firmware must print, computed on the host: losses (Q16.16), predictions and
    logits FNV after training, and the variables' checksum."""
    from .trainer import LOSS_ONE, Trainer

    tr = Trainer(model, backend=backend)
    losses = [int(round(tr.train_step(x, int(y)) * LOSS_ONE)) for x, y in zip(images, labels)]
    preds, fnvs = [], []
    for x in images[:inferences]:
        z = tr.logits(x).astype(np.int8)
        preds.append(int(np.argmax(z)))  # first maximum, as the firmware
        fnvs.append(_fnv1a(FNV_OFFSET, z.tobytes()))
    g = tr.trainable.graph
    checksum = variables_checksum(tr._tensor(t.index) for t in g.tensors if t.is_variable)
    return {"losses": losses, "predictions": preds, "logits_fnv": fnvs, "checksum": checksum}


def step_macs(graph) -> dict[str, int]:
    """MACs of one training step: forward (builtin MAC ops and fused chains) and backward
    (weight gradients of the trainable channels + input gradients), from the training graph."""
    from .summary import grad_op_macs, op_macs

    forward = sum(op_macs(graph, op) for op in graph.ops)
    backward = sum(grad_op_macs(graph, op) for op in graph.ops)
    return {"forward": forward, "backward": backward, "total": forward + backward}
