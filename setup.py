"""Builds micro_ops (the portable C engine and kernels) into the package as a shared
library loaded with ctypes. It is a plain C library: it defines no Python module."""
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildPlainLibrary(build_ext):
    # A ctypes library exports our tt_* functions, not PyInit_<name>.
    def get_export_symbols(self, ext):
        return []


sources = sorted(glob("micro_ops/kernels/*.c") + glob("micro_ops/engine/*.c")
                 + glob("micro_ops/engine/ops/*.c"))
setup(
    ext_modules=[Extension(
        "tflm_train._micro_ops",
        sources=sources,
        include_dirs=["micro_ops/include"],
        extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra"],
        libraries=["m"],
    )],
    cmdclass={"build_ext": BuildPlainLibrary},
)
