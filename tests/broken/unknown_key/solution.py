"""unknown_key: reference solution."""


def add(a, b):
    return a + b
