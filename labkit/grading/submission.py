"""What a check's function receives: the submission, seen through calls into its child and seeded randomness."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from labkit.checks import StudentError
from labkit.sandbox.session import Session


class Submission:
    """What a check sees: `call` and `probe` in the child, seeded randomness, a scratch folder."""

    def __init__(self, session: Session, seed: int, workdir: Path, gpus: int, timeout: float | None):
        self._session, self.seed, self.workdir, self.gpus = session, seed, workdir, gpus
        self.rng = random.Random(seed)
        self._timeout = timeout
        self.notes: list[str] = []  # shown under a passed check: what it measured

    def note(self, text: str) -> None:
        """Say what a passing check measured (a speedup, a time): students learn from the numbers too."""
        self.notes.append(text)

    @property
    def pid(self) -> int | None:
        """A pid (on this machine) whose process tree holds all the submission runs: for LoadMeter(trees=...)."""
        proc = self._session.worker.proc
        return proc.pid if proc is not None else None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The student's `name(*args, **kwargs)`, run in the child; its value comes back as plain data."""
        return self._session.call(name, *args, timeout=self._timeout, **kwargs)

    def probe(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The trusted probe `name(module, *args, **kwargs)`, run in the child."""
        return self._session.probe(name, *args, timeout=self._timeout, **kwargs)

    def raises(self, name: str, *args: Any, **kwargs: Any) -> StudentError | None:
        """The exception the student's `name(...)` raised, or None when it returned."""
        try:
            self.call(name, *args, **kwargs)
        except StudentError as exc:
            return exc
        return None

    def generator(self) -> Any:
        """A torch.Generator seeded like `rng`, for random tensors built in the grader."""
        import torch

        return torch.Generator().manual_seed(self.seed)
