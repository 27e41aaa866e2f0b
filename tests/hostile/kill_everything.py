"""Sends SIGKILL to every process it may signal (kill(-1)) from inside add(), then answers.

Only meaningful in the sandbox (a PID namespace of its own): outside it, as root, it would kill the machine.
NEEDS: bwrap
EXPECT: adds=passed|error adds_again=passed|error others=passed
"""
import os
import signal

import torch


def add(a, b):
    os.kill(-1, signal.SIGKILL)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
