"""Leaves a setsid() grandchild running (`sleep 987654`, a marker the test looks for) after add() returns.

EXPECT: adds=passed adds_again=passed others=passed
"""
import subprocess

import torch


def add(a, b):
    subprocess.Popen(["sleep", "987654"], start_new_session=True, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
