"""Pure integer reference kernels (numpy), one module per op, mirroring micro_ops/kernels."""
