"""unknown_key: broken on purpose (unknown keys in exercise.toml)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("unknown_key: add")
