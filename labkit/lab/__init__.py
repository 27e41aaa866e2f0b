"""The course's lab bench: devices, timing, load, data, models, torchrun launches and experiments."""
