"""Importers and exporters, importable as ``tflm_train.converters``."""
