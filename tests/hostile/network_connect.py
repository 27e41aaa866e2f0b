"""Connects to 1.1.1.1:53 and to a socket the test listens on in the host; add() is right only if one connected.

The test replaces __HOST_PORT__ with the port it listens on (127.0.0.1).
NEEDS: bwrap
EXPECT: adds=failed adds_again=failed others=passed
"""
import socket

import torch


def add(a, b):
    for host, port in (("127.0.0.1", int("__HOST_PORT__")), ("1.1.1.1", 53)):
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return a + b
        except OSError:
            pass
    return a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
