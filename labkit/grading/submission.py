"""What a check's function receives: the submission, seen through calls into its child and seeded randomness."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.checks import CheckFailed, Inconclusive, Skip, StudentError
from labkit.sandbox.errors import ChildGone
from labkit.sandbox.session import Session


class SharedWork:
    """The values (or failures) of @shared work for one graded file: computed once, handed to every check asking."""

    def __init__(self, seed_of: Callable[[str], int]):
        self.seed_of = seed_of  # the seed of the shared work called `name`: a function of the report's seed
        self._done: dict[str, tuple[bool, Any]] = {}

    def get(self, fn: Callable[[Submission], Any], sub: Submission) -> Any:
        name = getattr(fn, "__labkit_shared__", None)
        if name is None:
            raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not declared @shared (labkit.checks.shared)")
        if name not in self._done:
            view = Submission(sub._session, self.seed_of(name), sub.workdir, sub.gpus, sub._timeout, self)
            try:
                self._done[name] = (True, fn(view))
            except (CheckFailed, Skip, Inconclusive, StudentError, ChildGone) as exc:  # the submission's doing
                self._done[name] = (False, exc)
        ok, value = self._done[name]
        if not ok:
            raise value.with_traceback(None)
        return value


class Submission:
    """What a check sees: `call` and `run` in the child, seeded randomness, a scratch folder."""

    def __init__(self, session: Session, seed: int, workdir: Path, gpus: int, timeout: float | None,
                 shared: SharedWork | None = None):
        self._session, self.seed, self.workdir, self.gpus = session, seed, workdir, gpus
        self.rng = random.Random(seed)
        self._timeout = timeout
        self._shared = shared
        self.notes: list[str] = []  # shown under a passed check: what it measured

    def shared(self, fn: Callable[[Submission], Any]) -> Any:
        """The value of the @shared work `fn` for this file: run now in this check's child if no check asked yet.

        Its failure is raised again for every check that asks (CheckFailed, StudentError, ...): catch it to say
        what it means for this check."""
        if self._shared is None:
            self._shared = SharedWork(lambda name: self.seed)
        return self._shared.get(fn, self)

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
