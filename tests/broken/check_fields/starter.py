"""check_fields: broken on purpose (checks without a hint, a title or points)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("check_fields: add")
