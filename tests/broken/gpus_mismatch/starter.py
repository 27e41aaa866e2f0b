"""gpus_mismatch: broken on purpose (needs_gpus = 2 but no check needs a GPU)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("gpus_mismatch: add")
