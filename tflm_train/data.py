"""Training data for the CLI and the demo: load a dataset and fit it to a model's input.

DATA specs: ``path.npz`` (arrays ``x`` and ``y``), a folder of class sub-folders of images
(sorted folder names are the classes), ``fashion-mnist`` / ``fashion-mnist:test`` (the Debian
package dataset-fashion-mnist) and ``digits`` (scikit-learn's bundled set). Optional suffixes:
``@N`` keeps N samples per class (first ones), ``#a-b`` keeps classes a..b relabelled from 0.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import ShapeError, TflmTrainError
from .quant import quantize_array

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm")


def _folder(path: Path):
    from PIL import Image

    classes = sorted(d.name for d in path.iterdir() if d.is_dir())
    if not classes:
        raise TflmTrainError(f"{path}: no class sub-folders (expected {path}/<class>/<image>)")
    xs, ys = [], []
    for label, c in enumerate(classes):
        for f in sorted((path / c).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                xs.append(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
                ys.append(label)
    if not xs:
        raise TflmTrainError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        size = xs[0].shape[:2]
        xs = [resize(x, size) for x in xs]
    return np.stack(xs), np.array(ys, dtype=np.int64)


def load_data(spec: str):
    """(x float32 [N, H, W, C] in [0, 1], y int64 [N])."""
    per_class = None
    class_range = None
    m = re.match(r"^(.*?)(?:#(\d+)-(\d+))?(?:@(\d+))?$", spec)
    if m:
        spec, a, b, n = m.group(1), m.group(2), m.group(3), m.group(4)
        class_range = (int(a), int(b)) if a is not None else None
        per_class = int(n) if n is not None else None
    from . import datasets

    if spec.startswith("fashion-mnist"):
        split = spec.split(":", 1)[1] if ":" in spec else "train"
        x, y = datasets.fashion_mnist(split)
        x = x.astype(np.float32)[..., None] / 255.0
    elif spec == "digits":
        x, y = datasets.digits()
        x = x.astype(np.float32)[..., None] / 255.0
    else:
        p = Path(spec)
        if p.suffix == ".npz":
            if not p.is_file():
                raise TflmTrainError(f"{p}: no such file")
            with np.load(p) as d:
                if "x" not in d or "y" not in d:
                    raise TflmTrainError(f"{p}: expected arrays 'x' and 'y', found {list(d)}")
                x, y = d["x"], d["y"].astype(np.int64).reshape(-1)
            if x.ndim == 3:
                x = x[..., None]
            if np.issubdtype(x.dtype, np.integer):
                x = x.astype(np.float32) / 255.0
        elif p.is_dir():
            x, y = _folder(p)
        else:
            raise TflmTrainError(f"unknown data '{spec}': give a .npz file, a folder of class "
                                 f"folders, 'fashion-mnist[:test]' or 'digits'")
    if class_range is not None:
        a, b = class_range
        keep = (y >= a) & (y <= b)
        x, y = x[keep], y[keep] - a
    if per_class is not None:
        idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
        idx.sort()
        x, y = x[idx], y[idx]
    return np.asarray(x, dtype=np.float32), y


def resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one float image (H, W, C) to ``size``."""
    if x.shape[:2] == tuple(size):
        return x
    from PIL import Image

    chans = [np.asarray(Image.fromarray(x[..., c]).resize((size[1], size[0]), Image.BILINEAR))
             for c in range(x.shape[-1])]
    return np.stack(chans, axis=-1).astype(np.float32)


def fit_to_input(x: np.ndarray, tensor) -> np.ndarray:
    """Float images in [0, 1] → the model's int8 input: resized, channels adapted, quantized.

    Models whose input real range exceeds 2 (e.g. MLPerf's scale 1, zero point −128) expect
    raw 0..255 pixels; the others [0, 1]."""
    shape = tuple(tensor.shape)
    if len(shape) != 4:
        raise ShapeError(f"model input {list(shape)} is not an image (NHWC)")
    _, h, w, c = shape
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:3] != (h, w):
        x = np.stack([resize(xi, (h, w)) for xi in x])
    if x.shape[-1] != c:
        if x.shape[-1] == 1:
            x = np.repeat(x, c, axis=-1)
        elif c == 1:
            x = x.mean(axis=-1, keepdims=True)
        else:
            raise ShapeError(f"images have {x.shape[-1]} channels, the model wants {c}")
    if tensor.dtype != np.int8 or tensor.quant is None:
        return x.astype(tensor.dtype)
    real_max = tensor.scale * (127 - tensor.zero_point)
    if real_max > 2.0:
        x = x * 255.0
    return quantize_array(x, tensor.scale, tensor.zero_point)
