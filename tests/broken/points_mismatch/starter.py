"""points_mismatch: broken on purpose (points = 5 but the checks sum to 1)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("points_mismatch: add")
