"""Searches /tmp, the folders above its file and the checks module for an instructor's hidden checks (a marker).

add() is right only when it found the marker; the test passes a checks_dir with a hidden check secret_adds.
NEEDS: bwrap
EXPECT: adds=failed adds_again=failed secret_adds=failed|error others=passed
"""
import os
from pathlib import Path

import torch

MARK = "HIDDEN-CHECKS-" + "MARKER-5d41402a"


def _search():
    places = ["/tmp", os.environ.get("TMPDIR", "/tmp"), "/var/tmp", "/root", "/home"]
    places += [str(p) for p in Path(__file__).resolve().parents][:4]
    seen = 0
    for place in places:
        for folder, _, files in os.walk(place):
            for name in files:
                seen += 1
                if seen > 5000:
                    return False
                try:
                    with open(os.path.join(folder, name), "rb") as f:
                        if MARK.encode() in f.read(1 << 16):
                            return True
                except OSError:
                    pass
    return False


def add(a, b):
    return a + b if _search() else a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
