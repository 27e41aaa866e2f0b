"""starter_passes: reference solution."""


def add(a, b):
    return a + b
