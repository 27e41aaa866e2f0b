"""labkit: scaffold and autograde a multi-GPU PyTorch course."""

__version__ = "0.1.0"
