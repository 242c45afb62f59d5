"""The training commands of the CLI: convert (with an SRAM budget), inspect, fit, evaluate, export."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, tflm_invoke

from tflm_train.cli import main

BASE = ROOT / "examples/models/fashion5_cnn_int8.tflite"


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """A tiny dataset file: 40 Fashion-MNIST images of classes 5..9, relabelled 0..4."""
    from tflm_train.datasets import fashion_mnist

    x, y = fashion_mnist("test")
    keep = np.flatnonzero(y >= 5)[:40]
    path = tmp_path_factory.mktemp("data") / "d.npz"
    np.savez(path, x=x[keep], y=y[keep] - 5)
    return path


def test_convert_inspect_fit_evaluate_export(tmp_path, npz, capsys):
    train = tmp_path / "m.train.tflite"
    assert main(["convert", str(BASE), "-o", str(train), "--update", "last-2",
                 "--num-classes", "5", "--lr", "0.05", "--sram-budget", "256KB"]) == 0
    out = capsys.readouterr().out
    assert "peak SRAM" in out and "fits" in out and train.is_file()

    assert main(["inspect", str(train), "--json", "--plot", str(tmp_path / "mem.png")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["peak_sram"] > rep["arena"] > 0 and rep["metadata"]["num_classes"] == 5
    assert (tmp_path / "mem.png").stat().st_size > 1000

    trained = tmp_path / "t.train.tflite"
    assert main(["fit", str(train), "--data", str(npz), "--val", str(npz), "--epochs", "2",
                 "-o", str(trained), "--plot", str(tmp_path / "curve.png")]) == 0
    out = capsys.readouterr().out
    assert "epoch 2: mean loss" in out and (tmp_path / "curve.png").is_file()

    assert main(["evaluate", str(trained), "--data", str(npz)]) == 0
    acc_train = float(capsys.readouterr().out.split("accuracy: ")[1].split("%")[0])

    plain = tmp_path / "plain.tflite"
    assert main(["export", str(trained), "-o", str(plain)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(plain), "--data", str(npz)]) == 0
    acc_plain = float(capsys.readouterr().out.split("accuracy: ")[1].split("%")[0])
    assert acc_plain == acc_train > 40.0  # 5 classes: chance is 20 %
    x = np.zeros((1, 28, 28, 1), np.int8)
    assert tflm_invoke(plain.read_bytes(), [x])[0].shape == (1, 5)


def test_convert_over_budget_names_the_smallest_peak(tmp_path, capsys):
    out = tmp_path / "m.train.tflite"
    assert main(["convert", str(BASE), "-o", str(out), "--update", "full",
                 "--num-classes", "5", "--sram-budget", "16KB"]) == 2
    err = capsys.readouterr().err
    assert "exceeds the budget of 16.0 KB" in err and "smallest achievable peak" in err
    assert not out.exists()


def test_bad_scheme_and_bad_data_are_clear(tmp_path, capsys):
    assert main(["convert", str(BASE), "-o", str(tmp_path / "x"), "--update", "last-99"]) == 2
    assert "larger than the number of layers before the classifier (7)" in capsys.readouterr().err
    train = tmp_path / "m.train.tflite"
    assert main(["convert", str(BASE), "-o", str(train), "--num-classes", "5"]) == 0
    capsys.readouterr()
    assert main(["fit", str(train), "--data", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
