"""exercise4 — ResNet-18 on one device and on two (reference solution)."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader


class Residual(nn.Module):
    """d2l's residual block: two 3x3 convolutions with BatchNorm; a 1x1 convolution on a shortcut that changes shape."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes = stride != 1 or in_channels != out_channels
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if changes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))


def stage(in_channels: int, out_channels: int, first: bool) -> nn.Sequential:
    """Two residual blocks; every stage but the first halves the resolution and doubles the width."""
    if first:
        return nn.Sequential(Residual(in_channels, out_channels), Residual(out_channels, out_channels))
    return nn.Sequential(Residual(in_channels, out_channels, stride=2), Residual(out_channels, out_channels))


def resnet18(num_classes: int = 10, in_channels: int = 1, base_channels: int = 64) -> nn.Module:
    """d2l's ResNet-18 for 28x28 images: 3x3 stem with stride 1 and no max-pool, stages of c, 2c, 4c, 8c channels."""
    c = base_channels
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, c, kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(c), nn.ReLU()),
        stage(c, c, first=True),
        stage(c, 2 * c, first=False),
        stage(2 * c, 4 * c, first=False),
        stage(4 * c, 8 * c, first=False),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(8 * c, num_classes),
    )


def init_weights(m: nn.Module) -> None:
    """d2l's initialisation, for net.apply(init_weights): the weight of every nn.Linear and nn.Conv2d drawn from
    N(0, 0.01^2); biases and BatchNorm keep what they have."""
    if type(m) in (nn.Linear, nn.Conv2d):
        nn.init.normal_(m.weight, std=0.01)  # std by keyword: normal_'s second positional argument is the mean


def scaled_lr(base_lr: float, base_batch: int, batch: int) -> float:
    """The linear scaling rule: a batch k times larger takes a learning rate k times larger."""
    return base_lr * batch / base_batch


def lr_at(step: int, warmup_steps: int, peak_lr: float) -> float:
    """Gradual warm-up: rise linearly to `peak_lr` over `warmup_steps` steps, then stay there."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return peak_lr


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: CUDA kernels run asynchronously from the Python that launched them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def accuracy(net: nn.Module, data: DataLoader, device: torch.device) -> float:
    """Share of correctly classified samples, with BatchNorm in evaluation mode."""
    net.eval()
    right = total = 0
    with torch.no_grad():
        for X, y in data:
            X, y = X.to(device), y.to(device)
            right += (net(X).argmax(dim=1) == y).sum().item()
            total += y.numel()
    return right / max(total, 1)


def train(net: nn.Module, devices: list[torch.device], batch_size: int, lr: float, epochs: int,
          train_set, test_set, warmup_steps: int = 0) -> dict:
    """Train with SGD (learning rate lr_at(step)); DataParallel over two or more CUDA devices; honest epoch times."""
    devices = [torch.device(d) for d in devices]
    main = devices[0]
    net.to(main)
    cuda = [d for d in devices if d.type == "cuda"]
    model = nn.DataParallel(net, device_ids=cuda) if len(cuda) >= 2 else net
    optimizer = torch.optim.SGD(net.parameters(), lr=lr_at(0, warmup_steps, lr))
    train_iter = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    test_iter = DataLoader(test_set, batch_size=batch_size)
    losses: list[torch.Tensor] = []  # kept on the device: .item() every step would stall the GPU queue
    epoch_seconds, epoch_acc, step = [], [], 0
    for _ in range(epochs):
        model.train()
        synchronize(main)  # the previous epoch's work must not be billed to this one
        start = time.perf_counter()
        for X, y in train_iter:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, warmup_steps, lr)
            X, y = X.to(main), y.to(main)
            loss = F.cross_entropy(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            step += 1
        synchronize(main)  # the clock is read when the GPU has finished, not when Python has queued the work
        epoch_seconds.append(time.perf_counter() - start)
        epoch_acc.append(accuracy(model, test_iter, main))
    return {"test_acc": epoch_acc[-1] if epoch_acc else 0.0, "epoch_seconds": epoch_seconds,
            "losses": torch.stack(losses).cpu().tolist() if losses else [], "epoch_acc": epoch_acc}
