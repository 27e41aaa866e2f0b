"""The class summary: the table and summary.png rank checks worst first, alike; a check that never ran is drawn apart
from one nobody passed; the histogram counts whole students."""

from __future__ import annotations

from labkit.classroom.batch import Outcome
from labkit.classroom.summary import figure, plot, ranked, table


def outcome(student: str, checks: dict[str, str]) -> Outcome:
    return Outcome(student, "", "graded", sum(s == "passed" for s in checks.values()), len(checks),
                   checks={n: {"status": s, "points": 1.0 * (s == "passed"), "max_points": 1.0}
                           for n, s in checks.items()})


CLASS = [
    outcome("a", {"easy": "passed", "nobody": "failed", "half": "passed", "gpu": "skipped", "mid": "passed"}),
    outcome("b", {"easy": "passed", "nobody": "failed", "half": "failed", "gpu": "skipped", "mid": "passed"}),
    outcome("c", {"easy": "passed", "nobody": "error", "half": "passed", "gpu": "skipped", "mid": "failed"}),
    outcome("d", {"easy": "passed", "nobody": "failed", "half": "failed", "gpu": "skipped", "mid": "passed"}),
]


def test_ranked_worst_first_never_run_last():
    assert [(r.name, r.rate) for r in ranked(CLASS)] == [
        ("nobody", 0.0), ("half", 0.5), ("mid", 0.75), ("easy", 1.0), ("gpu", None)]


def test_table_and_plot_share_the_order_and_the_plot_marks_the_check_that_never_ran():
    text = table(CLASS, "exercise9")
    listed = [line.split()[0] for line in text.splitlines()[3:]]
    assert listed == ["nobody", "half", "mid", "easy", "gpu"] and "gpu     not run on this machine" in text
    fig = figure(CLASS, "exercise9")
    hist, bars = fig.axes
    top_to_bottom = sorted(bars.patches, key=lambda p: p.get_y())  # inverted y axis: the first row is drawn on top
    assert bars.yaxis_inverted()
    labels = [t.get_text() for t in bars.get_yticklabels()]
    assert labels == ["nobody", "half", "mid", "easy", "gpu"]
    widths = [round(p.get_width(), 2) for p in top_to_bottom]
    assert widths == [0.0, 0.5, 0.75, 1.0, 1.0]
    never, nobody = top_to_bottom[-1], top_to_bottom[0]
    assert never.get_hatch() == "//" and never.get_facecolor()[3] == 0  # outlined and hatched: not a full bar
    assert nobody.get_hatch() in (None, "") and [t.get_text() for t in bars.texts] == ["not run here"]
    hist.figure.canvas.draw()
    ticks = [t for t in hist.get_yticks() if hist.get_ylim()[0] <= t <= hist.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks  # 4 students: no 0.5 student tick
    assert all(float(t).is_integer() for t in hist.get_xticks())


def test_plot_writes_a_png(tmp_path):
    path = plot(CLASS, tmp_path / "summary.png", "exercise9")
    assert path.read_bytes()[:4] == b"\x89PNG"
