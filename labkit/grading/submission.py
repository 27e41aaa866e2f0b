"""What a check's function receives: the submission, seen through calls into its child and seeded randomness."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.checks import StudentError
from labkit.sandbox.session import Session


class Submission:
    """What a check sees: `call` and `run` in the child, seeded randomness, a scratch folder."""

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

    def run(self, program: Any, *, gate: Callable[[int], float] | None = None) -> dict:
        """Carry out a labkit.recipe.Program in the child: {"values": reports by name, "steps": records, "gates"}.

        `gate(n)` is how long (seconds) the grader holds the n-th call of the program's gate; "gates" holds the
        grader's own (arrived, released) clock readings for each.
        """
        data = program.to_data() if hasattr(program, "to_data") else program
        return self._session.run(data, timeout=self._timeout, gate=gate)

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
