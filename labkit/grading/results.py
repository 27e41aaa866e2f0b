"""What grading produces: a CheckResult per check and the Report of one file, with its JSON round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

STATUSES = ("passed", "failed", "error", "skipped", "inconclusive")


@dataclass
class CheckResult:
    """The verdict of one check."""

    name: str
    title: str
    status: str  # one of STATUSES
    points: float  # earned
    max_points: float
    message: str = ""  # why it failed, errored or was skipped
    hint: str | None = None  # shown on failure
    output: str = ""  # what the student's code printed during the check (capped)
    seconds: float = 0.0
    hidden: bool = False
    wants_gpus: int = 0  # skipped because it needs this many GPUs and the machine has fewer (0: not for that)
    artifacts: str | None = None  # where the files the check inspected were kept (the student path only)

    @property
    def counted(self) -> bool:
        """Skipped and inconclusive checks count neither for nor against the score."""
        return self.status in ("passed", "failed", "error")


@dataclass
class Report:
    """Every check's verdict for one file, with what is needed to reproduce it."""

    exercise: str
    title: str
    file: str
    sha256: str
    seed: int
    sandbox: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: dict = field(default_factory=dict)
    data: str | None = None  # which data the checks trained on, when they train
    only: list[str] = field(default_factory=list)  # when set, the only checks that ran (the score is partial)
    reveal_hidden: bool = False  # the instructor lets students see hidden checks' names and messages
    withheld: int = 0  # in a student's view: how many hidden checks were left out
    feedback: str = "message"  # course.toml's level: "message" (hints via `labkit hint`) or "hint" (shown inline)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results if r.counted)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results if r.counted)

    @property
    def ok(self) -> bool:
        """True when nothing failed or errored (what `labkit check` exits 0 on)."""
        return all(r.status not in ("failed", "error") for r in self.results)

    @property
    def full_marks(self) -> bool:
        """Nothing failed and every counted point was earned."""
        return self.ok and self.score == self.max_score

    @property
    def gpu_points(self) -> float:
        """Points of the checks skipped because this machine lacks the GPUs they need."""
        return sum(r.max_points for r in self.results if r.wants_gpus)

    @property
    def gpu_need(self) -> int:
        """The most GPUs a check skipped for want of them needs (0: none was)."""
        return max((r.wants_gpus for r in self.results if r.wants_gpus), default=0)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def to_dict(self) -> dict:
        """Plain data (what `--json` prints and result files hold), with the derived score fields."""
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score, ok=self.ok)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """The inverse of to_dict: derived and unknown fields are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        names = {f.name for f in fields(CheckResult)}
        values["results"] = [CheckResult(**{k: v for k, v in r.items() if k in names}) for r in data.get("results", [])]
        return cls(**values)
