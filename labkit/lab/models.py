"""The grader's own small ResNet-18 (width `base`), for timing checks and benchmarks that must not use the student's.

It lives in labkit.zoo, so that a `zoo("small_resnet", ...)` recipe builds it in a sandboxed rank,
which imports nothing from labkit.lab; this name stays for the lab's own code.
"""

from __future__ import annotations

from labkit.zoo import small_resnet

__all__ = ["small_resnet"]
