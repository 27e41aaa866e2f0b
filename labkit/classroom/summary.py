"""A class at a glance: the one-screen table and summary.png (score histogram, pass rate per check)."""

from __future__ import annotations

import statistics
from pathlib import Path

from labkit.classroom.batch import Outcome, pass_rates
from labkit.i18n import pad, width
from labkit.text import visible


def table(outcomes: list[Outcome], exercise_id: str) -> str:
    """Counts, score statistics, the pass rate of every check (worst first) and who could not be graded."""
    graded = [o for o in outcomes if o.status == "graded"]
    errors = [o for o in outcomes if o.status == "error"]
    missing = [o for o in outcomes if o.status == "missing"]
    lines = [f"{exercise_id}: {len(graded)} graded, {len(errors)} not gradable, {len(missing)} missing"]
    if graded:
        scores = [o.score for o in graded]
        top = graded[0].max_score
        full = sum(o.score == o.max_score for o in graded)
        lines.append(f"score: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):.1f} of "
                     f"{top:g}; {full} full marks")
    rates = sorted(pass_rates(outcomes).items(), key=lambda kv: kv[1][0] / kv[1][1] if kv[1][1] else 1.0)
    if rates:
        columns = max(width(visible(n)) for n, _ in rates)  # by terminal columns: a check name may be Chinese
        lines.append(f"{pad('check', columns)}  pass rate")
        for name, (passed, counted) in rates:
            if not counted:  # skipped everywhere (needs GPUs) or inconclusive: no rate to show
                lines.append(f"{pad(visible(name), columns)}  not run on this machine")
                continue
            rate = passed / counted
            lines.append(f"{pad(visible(name), columns)}  {passed:>3}/{counted:<3} {rate:>5.0%} "
                         f"{'#' * round(20 * rate)}")
    for o in errors:
        lines.append(f"not gradable: {visible(o.student)}: {visible(o.error)}")  # one line each, whatever the id holds
    if missing:
        lines.append("missing: " + ", ".join(visible(f"{o.student} ({o.name})" if o.name else o.student)
                                             for o in missing))
    return "\n".join(lines)


def warm() -> None:
    """Import matplotlib now (a background thread while the class is graded), not after the last student."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def plot(outcomes: list[Outcome], path: Path, exercise_id: str) -> Path:
    """summary.png: the score histogram and each check's pass rate."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a grading server
    import matplotlib.pyplot as plt

    graded = [o for o in outcomes if o.status == "graded"]
    rates = pass_rates(outcomes)
    fig, (hist, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    top = max((o.max_score for o in graded), default=1) or 1
    hist.hist([o.score for o in graded], bins=min(20, int(top) + 1), range=(0, top), color="tab:blue")
    hist.set(title=f"{exercise_id}: scores ({len(graded)} graded)", xlabel="score", ylabel="students")
    names = list(rates)
    values = [p / c if c else 0 for p, c in rates.values()]
    bars.barh(names, values, color=["tab:red" if v < 0.5 else "tab:green" for v in values])
    bars.set(title="pass rate per check", xlim=(0, 1), xlabel="fraction of graded students")
    bars.invert_yaxis()
    for ax in (hist, bars):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
