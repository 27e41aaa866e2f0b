"""Kills its parent, the grading worker, with SIGKILL from inside add() (the engine must restart it).

EXPECT: adds=passed|error adds_again=passed|error others=passed
"""
import os
import signal

import torch


def add(a, b):
    os.kill(os.getppid(), signal.SIGKILL)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
