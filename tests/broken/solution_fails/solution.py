"""solution_fails: reference solution."""


def add(a, b):
    return a - b
