"""Patches time.perf_counter, time.monotonic and time.time at import (frozen, then running backwards).

The verdicts must not change (the right answers still pass) and the grader must go on.
EXPECT: others=passed
"""
import itertools
import time

import torch

_ticks = itertools.count()
time.perf_counter = lambda: 1000.0 - next(_ticks)
time.monotonic = lambda: 5.0
time.time = lambda: 0.0
time.perf_counter_ns = lambda: 0


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
