"""``Trainer``: the host simulation of on-device training (numpy or C engine, same bits).

Batch size 1, as on the device: ``train_step(x, label)`` runs forward, loss, backward and the
in-place updates of the training graph once. Inference runs the same graph with label -1
(the loss emits no gradient, backward ops return at once).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ShapeError, TflmTrainError
from .kernels.update import update_lr
from .trainable import TrainableModel, export_inference_model, load_trainable

LOSS_ONE = 65536.0  # the loss output is Q16.16 nats


class Trainer:
    def __init__(self, trainable, backend: str = "numpy"):
        if not isinstance(trainable, TrainableModel):
            trainable = load_trainable(trainable)
        self.trainable = trainable
        self.backend = backend
        g = trainable.graph
        self.image = g.tensors[g.inputs[0]]
        self.label = g.tensors[g.inputs[1]]
        self.num_classes = int(g.tensors[g.outputs[0]].shape[-1])
        self.state_index = trainable.tensor_index("tt_state")
        if backend == "numpy":
            from .engine_numpy import NumpyEngine
            self._engine = NumpyEngine(g)
        elif backend == "c":
            from .engine_c import CEngine
            self._engine = CEngine(trainable.bytes)
        else:
            raise ValueError(f"backend must be 'numpy' or 'c', not {backend!r}")
        self.steps = 0

    # -------------------------------------------------------------------------------- engine
    def _tensor(self, index: int) -> np.ndarray:
        return np.asarray(self._engine.tensor(index))

    def _set_tensor(self, index: int, value: np.ndarray) -> None:
        self._engine.set_tensor(index, value)

    def _image(self, x) -> np.ndarray:
        x = np.asarray(x)
        shape = self.image.shape
        if x.shape == shape[1:]:
            x = x[None]
        if x.shape != shape:
            raise ShapeError(f"image must have shape {list(shape)} (or {list(shape[1:])}), got "
                             f"{list(x.shape)}")
        if x.dtype != self.image.dtype:
            if np.issubdtype(x.dtype, np.integer) and x.min() >= -128 and x.max() <= 127 \
                    and self.image.dtype == np.int8:
                x = x.astype(np.int8)
            else:
                raise ShapeError(f"image must be {self.image.dtype.name}, got {x.dtype.name} "
                                 f"(quantize with scale {self.image.scale:g}, zero point "
                                 f"{self.image.zero_point})")
        return np.ascontiguousarray(x)

    def _run(self, x, label: int):
        outs = self._engine.invoke([self._image(x), np.array([label], dtype=np.int32)])
        return outs[0], int(np.asarray(outs[1]).reshape(-1)[0])

    # ------------------------------------------------------------------------------ training
    @property
    def lr(self) -> float:
        s = self._tensor(self.state_index)
        return float(int(s[0]) * 2.0 ** (int(s[1]) - 31))

    @lr.setter
    def lr(self, value: float) -> None:
        s = self._tensor(self.state_index).copy()
        s[0], s[1] = update_lr(value)
        self._set_tensor(self.state_index, s)

    def train_step(self, x, label: int) -> float:
        """One step on one sample; returns the loss (nats) of the forward pass."""
        label = int(label)
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} out of range: the model has {self.num_classes} "
                             f"classes (0..{self.num_classes - 1})")
        _, loss = self._run(x, label)
        self.steps += 1
        return loss / LOSS_ONE

    def logits(self, x) -> np.ndarray:
        return np.asarray(self._run(x, -1)[0]).reshape(-1)

    def predict(self, x) -> int:
        return int(np.argmax(self.logits(x)))

    def evaluate(self, x, y, progress: bool = False) -> float:
        """Top-1 accuracy on samples x (N, ...) with labels y (N,)."""
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ShapeError(f"{len(x)} samples but {len(y)} labels")
        it = range(len(x))
        if progress:
            from tqdm import tqdm
            it = tqdm(it, desc="evaluate", unit="img", leave=False)
        return float(np.mean([self.predict(x[i]) == int(y[i]) for i in it])) if len(x) else 0.0

    def fit(self, x, y, epochs: int = 1, shuffle_seed: int | None = 0,
            progress: bool = True) -> list[float]:
        """Train on (x, y) one sample at a time; returns the mean loss of each epoch."""
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ShapeError(f"{len(x)} samples but {len(y)} labels")
        bad = np.flatnonzero((y < 0) | (y >= self.num_classes))
        if bad.size:
            raise ValueError(f"label {int(y[bad[0]])} at index {int(bad[0])} out of range: "
                             f"the model has {self.num_classes} classes")
        rng = np.random.default_rng(shuffle_seed)
        history = []
        for epoch in range(epochs):
            order = rng.permutation(len(x)) if shuffle_seed is not None else np.arange(len(x))
            it = order
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(order, desc=f"epoch {epoch + 1}/{epochs}", unit="step")
                it = bar
            losses = []
            for i in it:
                losses.append(self.train_step(x[i], int(y[i])))
                if bar is not None and len(losses) % 20 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            history.append(float(np.mean(losses)) if losses else 0.0)
        return history

    # ------------------------------------------------------------------------------ results
    def parameters(self) -> dict[str, np.ndarray]:
        """Current trainable parameters and training state, by tensor name."""
        g = self.trainable.graph
        idx = self.trainable.parameter_indices() + self.trainable.optimizer_state_indices()
        out = {g.tensors[i].name: self._tensor(i) for i in idx}
        out["tt_state"] = self._tensor(self.state_index)
        return out

    def reset(self) -> None:
        """Restore the parameters and state of the model file."""
        self._engine.reset()
        self.steps = 0

    def export(self, path=None) -> bytes:
        """Plain int8 .tflite with the trained weights, for stock TFLM / LiteRT."""
        variables = {i: self._tensor(i) for i in self.trainable.parameter_indices()}
        data = export_inference_model(self.trainable, variables)
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def save(self, path) -> None:
        """A *.train.tflite holding the current parameters (training can resume from it)."""
        from . import tflite_io
        import copy

        model = copy.deepcopy(self.trainable.model)
        sg = model.subgraphs[0]
        for i in (self.trainable.parameter_indices() + self.trainable.optimizer_state_indices()
                  + [self.state_index]):
            model.buffers[sg.tensors[i].buffer].data = np.frombuffer(
                np.ascontiguousarray(self._tensor(i)).tobytes(), dtype=np.uint8).copy()
        Path(path).write_bytes(tflite_io.write_model(model))


__all__ = ["Trainer", "TflmTrainError"]
