"""Offline datasets: Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` and
scikit-learn's bundled digits. Nothing is downloaded."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .errors import TflmTrainError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split: str = "train", root: Path = FASHION_MNIST_DIR):
    """(images uint8 [N, 28, 28], labels int64 [N]) of Fashion-MNIST."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    img = root / f"{prefix}-images-idx3-ubyte.gz"
    lab = root / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.is_file() or not lab.is_file():
        raise TflmTrainError(f"Fashion-MNIST not found in {root}: install the Debian package "
                             f"'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist)")
    return _read_idx(img), _read_idx(lab).astype(np.int64)


def digits():
    """(images uint8 [N, 8, 8] scaled to 0..255, labels int64 [N]) of scikit-learn's digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * (255.0 / 16.0)).round().astype(np.uint8), d.target.astype(np.int64)
