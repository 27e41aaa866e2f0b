"""gpus_mismatch: reference solution."""


def add(a, b):
    return a + b
