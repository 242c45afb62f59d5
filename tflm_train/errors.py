"""Exceptions with messages that name the file, op or layer and what is supported."""


class TflmTrainError(Exception):
    """Base class of every error raised by tflm_train."""


class ModelFormatError(TflmTrainError):
    """The .tflite file is malformed, truncated or not a TFLite flatbuffer."""


class UnsupportedOpError(TflmTrainError):
    """An op, tensor type or option the engines do not implement."""

    def __init__(self, op_index: int, opcode: str, detail: str = "", supported=None):
        from .ops import SUPPORTED_OPS

        supported = SUPPORTED_OPS if supported is None else supported
        msg = f"op {op_index} ({opcode})"
        msg += f": {detail}" if detail else " is not supported"
        msg += f". Supported ops: {', '.join(supported)}"
        super().__init__(msg)
        self.op_index = op_index
        self.opcode = opcode

    @classmethod
    def from_message(cls, message: str, op_index: int | None = None,
                     opcode: str | None = None) -> "UnsupportedOpError":
        """An error whose message is used as is (the C engine composes its own)."""
        err = cls.__new__(cls)
        TflmTrainError.__init__(err, message)
        err.op_index = op_index
        err.opcode = opcode
        return err


class ShapeError(TflmTrainError):
    """An input array or tensor has the wrong shape or dtype."""


class EngineError(TflmTrainError):
    """The C engine returned an error status."""
