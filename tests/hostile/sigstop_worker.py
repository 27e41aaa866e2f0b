"""Stops (SIGSTOP) its parent, the grading worker, from model(): the grader must notice and go on.

EXPECT: builds=passed|error others=passed
"""
import os
import signal

import torch


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    os.kill(os.getppid(), signal.SIGSTOP)
    return torch.nn.Linear(3, 2)
