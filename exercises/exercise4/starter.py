"""exercise4 — ResNet-18 on one device and on two.

Fill in the five functions below, then run `labkit check exercise4`.
Keep the names and signatures: the checks call them. On a GPU machine,
`labkit run exercise4 --full` runs the course's real experiment with your code.
"""

from __future__ import annotations

import time  # noqa: F401  (you will need it)

import torch
from torch import nn
from torch.nn import functional as F  # noqa: F401
from torch.utils.data import DataLoader  # noqa: F401


def resnet18(num_classes: int = 10, in_channels: int = 1, base_channels: int = 64) -> nn.Module:
    """d2l's ResNet-18 for 28x28 images: 3x3 stem with stride 1 and no max-pool, stages of c, 2c, 4c, 8c channels."""
    # TODO: stem = 3x3 conv (stride 1, padding 1) + BatchNorm + ReLU; then four stages of two residual blocks;
    #       the first block of stages 2-4 has stride 2 and a 1x1 conv on its shortcut; then global average
    #       pooling, flatten, and one Linear layer. 11,175,818 parameters at the defaults.
    raise NotImplementedError("exercise4: resnet18")


def init_weights(m: nn.Module) -> None:
    """d2l's initialisation, for net.apply(init_weights): the weight of every nn.Linear and nn.Conv2d drawn from
    N(0, 0.01^2); biases and BatchNorm keep what they have."""
    # TODO: net.apply calls this on every module (ReLU and the network itself included): act only on nn.Linear and
    #       nn.Conv2d; torch.nn.init.normal_(tensor, mean=0.0, std=1.0) changes a tensor in place.
    raise NotImplementedError("exercise4: init_weights")


def scaled_lr(base_lr: float, base_batch: int, batch: int) -> float:
    """The learning rate for `batch`, given one that works for `base_batch` (the linear scaling rule)."""
    # TODO
    raise NotImplementedError("exercise4: scaled_lr")


def lr_at(step: int, warmup_steps: int, peak_lr: float) -> float:
    """The learning rate at `step` (from 0): a linear warm-up to `peak_lr` over `warmup_steps` steps, then the peak."""
    # TODO: peak_lr * (step + 1) / warmup_steps while step < warmup_steps; warmup_steps=0 means no warm-up.
    raise NotImplementedError("exercise4: lr_at")


def train(net: nn.Module, devices: list[torch.device], batch_size: int, lr: float, epochs: int,
          train_set, test_set, warmup_steps: int = 0) -> dict:
    """Train `net` with SGD and return {"test_acc": float, "epoch_seconds": [...], "losses": [...]}.

    train_set and test_set are map-style datasets of (image, label) pairs: read them with a DataLoader.
    Run on devices[0]; with two or more CUDA devices, spread each batch over them with nn.DataParallel.
    Before every step the learning rate is lr_at(step, warmup_steps, lr). "epoch_seconds" holds the
    wall-clock time of each epoch's training loop; "losses" one loss per step; "test_acc" the share of
    test_set classified correctly at the end. You may add "epoch_acc" (test accuracy after each epoch):
    the plot of `labkit run exercise4 --full` uses it.
    """
    # TODO: on CUDA, kernels run asynchronously: synchronise before reading the clock.
    raise NotImplementedError("exercise4: train")
