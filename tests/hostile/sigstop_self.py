"""Stops its own process with SIGSTOP inside scale(): a hang the wall-clock limit must end.

EXPECT: scales=error others=passed
"""
import os
import signal

import torch


def add(a, b):
    return a + b


def scale(x, k):
    os.kill(os.getpid(), signal.SIGSTOP)
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
