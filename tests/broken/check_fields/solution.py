"""check_fields: reference solution."""


def add(a, b):
    return a + b
