"""Writes into the grading worker's memory through /proc/<ppid>/mem: zeroes labkit.sandbox.wire.MAX_NODES there.

The child is a fork of the worker, so id() gives the same address in the worker; if the write works,
every later child forked by that worker (later checks, later students) fails to send any answer.
EXPECT: adds=passed|error others=passed
"""
import os

import torch


def add(a, b):
    from labkit.sandbox import wire

    try:
        with open(f"/proc/{os.getppid()}/mem", "r+b", buffering=0) as mem:
            mem.seek(id(wire.MAX_NODES) + 24)  # the first 30-bit digit of the int object
            mem.write(b"\0\0\0\0")
    except OSError as exc:
        print("no write:", exc)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
