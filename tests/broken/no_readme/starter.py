"""no_readme: broken on purpose (no statement (README.md))."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("no_readme: add")
