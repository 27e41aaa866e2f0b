"""missing_field: broken on purpose (exercise.toml has no title)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("missing_field: add")
