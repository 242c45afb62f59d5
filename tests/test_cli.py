"""The command line: inspect (text and JSON), run, clear errors, --help."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from tflm_train.cli import main

BASE_MODEL = ROOT / "examples/models/fashion5_cnn_int8.tflite"


def test_inspect_json_reports_ops_params_and_arena(capsys):
    assert main(["inspect", str(BASE_MODEL), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    ops = [o["op"] for o in s["ops"]]
    assert ops.count("CONV_2D") == 4 and "DEPTHWISE_CONV_2D" in ops and "ADD" in ops
    assert s["params"] > 1000 and s["macs"] > 100_000
    assert s["arena_bytes"] > 0


def test_inspect_text(capsys):
    assert main(["inspect", str(BASE_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "inference arena (C engine):" in out and "DEPTHWISE_CONV_2D" in out


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_run_prints_output_and_saves(tmp_path, capsys, backend):
    x = np.random.default_rng(0).integers(-128, 128, size=(28, 28, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    out_path = tmp_path / "y.npy"
    assert main(["run", str(BASE_MODEL), "--input", str(tmp_path / "x.npy"),
                 "--backend", backend, "-o", str(out_path)]) == 0
    assert "argmax:" in capsys.readouterr().out
    y = np.load(out_path)
    assert y.shape == (1, 5) and y.dtype == np.int8


def test_run_wrong_shape_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 3), np.int8))
    assert main(["run", str(BASE_MODEL), "--input", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "expects shape [1, 28, 28, 1]" in err and "[3, 3]" in err


def test_corrupt_model_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(BASE_MODEL.read_bytes()[:100])
    assert main(["inspect", str(bad)]) == 2
    assert "bad.tflite" in capsys.readouterr().err


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "tflm_train.cli", "--help"], capture_output=True,
                       text=True, check=True)
    assert "inspect" in r.stdout and "run" in r.stdout
