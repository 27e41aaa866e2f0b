"""solution_fails: broken on purpose (the reference solution gives a wrong answer)."""


def add(a, b):
    """Return a + b."""
    # TODO: one line.
    raise NotImplementedError("solution_fails: add")
