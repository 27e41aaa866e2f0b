"""A class at a glance: the one-screen table and summary.png (score histogram, pass rate per check, worst first)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from labkit.classroom.batch import Outcome, pass_rates
from labkit.i18n import pad, width
from labkit.text import visible


@dataclass(frozen=True)
class Rate:
    """One check's pass rate over the graded students; `rate` is None where it never ran (skipped, inconclusive)."""

    name: str
    passed: int
    counted: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.counted if self.counted else None


def ranked(outcomes: list[Outcome]) -> list[Rate]:
    """Every check's pass rate, worst first; checks that never ran last (they have no rate to rank)."""
    rates = [Rate(name, passed, counted) for name, (passed, counted) in pass_rates(outcomes).items()]
    return sorted(rates, key=lambda r: (r.rate is None, r.rate or 0.0))  # stable: ties keep the report's order


def table(outcomes: list[Outcome], exercise_id: str, strangers: list[str] | tuple[str, ...] = ()) -> str:
    """Counts, score statistics, the pass rate of every check (worst first), who could not be graded, and who
    handed in without being on the roster (`strangers`)."""
    graded = [o for o in outcomes if o.status == "graded"]
    errors = [o for o in outcomes if o.status == "error"]
    missing = [o for o in outcomes if o.status == "missing"]
    late = sum(o.late for o in outcomes)
    lines = [f"{exercise_id}: {len(graded)} graded, {len(errors)} not gradable, {len(missing)} missing"
             + (f", {late} late" if late else "")]
    if graded:
        scores = [o.score for o in graded]
        top = graded[0].max_score
        full = sum(o.score == o.max_score for o in graded)
        lines.append(f"score: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):.1f} of "
                     f"{top:g}; {full} with full marks")
    rates = ranked(outcomes)
    if rates:
        columns = max(width(visible(r.name)) for r in rates)  # by terminal columns: a check name may be Chinese
        lines.append(f"{pad('check', columns)}  pass rate")
        for r in rates:
            if r.rate is None:  # skipped everywhere (needs GPUs) or inconclusive: no rate to show
                lines.append(f"{pad(visible(r.name), columns)}  not run on this machine")
                continue
            lines.append(f"{pad(visible(r.name), columns)}  {r.passed:>3}/{r.counted:<3} {r.rate:>5.0%} "
                         f"{'#' * round(20 * r.rate)}")
    for o in errors:
        lines.append(f"not gradable: {visible(o.student)}: {visible(o.error)}")  # one line each, whatever the id holds
    if missing:
        lines.append("missing: " + ", ".join(visible(f"{o.student} ({o.name})" if o.name else o.student)
                                             for o in missing))
    if strangers:
        lines.append(f"not on the roster ({len(strangers)}; a mistyped id?): "
                     + ", ".join(visible(s) for s in strangers))
    return "\n".join(lines)


def warm() -> None:
    """Import matplotlib now (a background thread while the class is graded), not after the last student."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def figure(outcomes: list[Outcome], exercise_id: str):
    """summary.png's figure: the score histogram (whole students on its axis) and each check's pass rate, worst at
    the top like the table; a check that never ran is a grey hatched bar labelled so, never a 0 % bar."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a grading server
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    graded = [o for o in outcomes if o.status == "graded"]
    rates = ranked(outcomes)
    fig, (hist, bars) = plt.subplots(1, 2, figsize=(12, max(4.5, 0.35 * len(rates) + 1.5)))
    top = max((o.max_score for o in graded), default=1) or 1
    hist.hist([o.score for o in graded], bins=min(20, int(top) + 1), range=(0, top), color="tab:blue")
    hist.set(title=f"{exercise_id}: scores ({len(graded)} graded)", xlabel="score", ylabel="students")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))  # students are counted whole
    hist.xaxis.set_major_locator(MaxNLocator(integer=True))
    drawn = bars.barh([r.name for r in rates], [1.0 if r.rate is None else r.rate for r in rates])
    for bar, r in zip(drawn, rates, strict=True):
        if r.rate is None:  # no rate: an outlined, hatched bar across the axis, said in words too
            bar.set(facecolor="none", edgecolor="grey", hatch="//")
            bars.text(0.5, bar.get_y() + bar.get_height() / 2, "not run here", ha="center", va="center",
                      color="dimgrey")
        else:
            bar.set_color("tab:red" if r.rate < 0.5 else "tab:green")
    bars.set(title="pass rate per check (worst first)", xlim=(0, 1), xlabel="fraction of graded students")
    bars.invert_yaxis()  # the first (worst) at the top, as the table lists it
    for ax in (hist, bars):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot(outcomes: list[Outcome], path: Path, exercise_id: str) -> Path:
    """summary.png: the figure above, written with the user's umask (savefig opens it like any file)."""
    import matplotlib.pyplot as plt

    fig = figure(outcomes, exercise_id)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
