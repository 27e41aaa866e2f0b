"""too_slow: reference solution."""


import time


def add(a, b):
    time.sleep(0.7)
    return a + b
