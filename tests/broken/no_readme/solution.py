"""no_readme: reference solution."""


def add(a, b):
    return a + b
