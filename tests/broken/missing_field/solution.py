"""missing_field: reference solution."""


def add(a, b):
    return a + b
