"""Reports: the terminal, JSON, JUnit XML and Gradescope's results.json."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace

from labkit.grading.results import CheckResult, Report
from labkit.i18n import _, clip, pad
from labkit.i18n import width as width_of
from labkit.text import block, json_text, visible, visible_lines, xml_text

SYMBOLS = {"passed": "✓", "failed": "✗", "error": "!", "skipped": "–", "inconclusive": "?"}
COLOURS = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "inconclusive": "yellow"}
OUTPUT_LINES = 8  # lines of the student's own output shown under a failing check


def _plain(text: str, **_: object) -> str:
    return text


def student_view(report: Report) -> Report:
    """What a student may see: hidden checks left out (unless the instructor reveals them), counted in `withheld`."""
    if report.reveal_hidden:
        return report
    shown = [r for r in report.results if not r.hidden]
    return replace(report, results=shown, withheld=len(report.results) - len(shown))


def hidden_note(report: Report) -> str:
    """Tell a student that hidden checks exist, once every visible check passes (before, they have work to do)."""
    if not report.withheld or report.count("failed") or report.count("error"):
        return ""
    return _("Every visible check passes. {n} hidden check(s) also grade this exercise: test the cases the "
             "statement describes beyond those shown.").format(n=report.withheld)


def check_line(r: CheckResult, style: Callable[..., str] = _plain, width: int = 70) -> str:
    """One check: symbol, title, points; reason, hint and output below when it did not pass."""
    points = f"{_num(r.points)}/{_num(r.max_points)}" if r.counted else status_word(r.status)
    title = pad(clip(visible(r.title), width), width)  # CJK takes two columns: align by columns, not characters
    lines = [f"  {style(SYMBOLS[r.status], fg=COLOURS[r.status], bold=True)} {title} {pad_left(points, 7)}"]
    if r.message:  # why it did not pass; under a pass, what it measured
        lines += [f"      {line}" for line in visible_lines(r.message)]  # it may quote the student's values
    if r.hint:
        lines.append(style("      " + _("hint: {hint}").format(hint=r.hint), fg="cyan"))
    if r.status in ("failed", "error") and r.output.strip():
        out = visible_lines(r.output.rstrip())  # line by line, so a CR or ESC can neither forge nor hide a line
        lines.append("      " + _("your code printed:"))
        lines += [f"        | {line}" for line in out[:OUTPUT_LINES]]
        if len(out) > OUTPUT_LINES:
            lines.append("        | " + _("... ({n} more lines)").format(n=len(out) - OUTPUT_LINES))
    return "\n".join(lines)


def status_word(status: str) -> str:
    """A status as people read it (the English word stays the key in machine reports)."""
    return {"passed": _("passed"), "failed": _("failed"), "error": _("error"), "skipped": _("skipped"),
            "inconclusive": _("inconclusive")}[status]


def pad_left(text: str, columns: int) -> str:
    return " " * max(0, columns - width_of(text)) + text


def header_line(exercise_id: str, title: str, style: Callable[..., str] = _plain) -> str:
    return style(visible(f"{exercise_id} — {title}"), bold=True)


def summary(report: Report, style: Callable[..., str] = _plain) -> str:
    """The closing lines: score, counts, time, seed, and the environment in one line."""
    counts = ", ".join(f"{report.count(s)} {status_word(s)}" for s in SYMBOLS if report.count(s))
    colour = "green" if report.ok else "red"
    score = style(_("Score {score}/{max}").format(score=_num(report.score), max=_num(report.max_score)), fg=colour,
                  bold=True)
    lines = [f"{score} · {counts} · {report.seconds:.1f} s · " + _("seed {seed} · sandbox {sandbox}").format(
        seed=report.seed, sandbox=report.sandbox)]
    if report.data:
        lines.append(_("data: {data}").format(data=report.data))
    if report.only:
        lines.append(_("only {checks} ran (--only): the score is partial").format(checks=", ".join(report.only)))
    if hidden_note(report):
        lines.append(hidden_note(report))
    apart = [r for r in report.results if not r.counted]
    if apart:
        lines.append(_("({n} skipped or inconclusive: they count neither for nor against the score)").format(
            n=len(apart)))
    fp = report.fingerprint
    if fp:
        gpus = _("{n} GPU(s)").format(n=len(fp["gpus"])) if fp.get("gpus") else _("no GPU")
        lines.append(f"labkit {fp['labkit']} · Python {fp['python']} · torch {fp.get('torch') or 'missing'} · "
                     f"CUDA {fp.get('cuda') or '-'} · {gpus} · " + _("{n} CPUs").format(n=fp["cpu_count"])
                     + " · " + _("file sha256 {sha}").format(sha=report.sha256[:12]))
    return "\n".join(lines)


def terminal(report: Report, style: Callable[..., str] = _plain) -> str:
    """The whole report as a student reads it."""
    body = [check_line(r, style) for r in report.results]
    return "\n".join([header_line(report.exercise, report.title, style), *body, summary(report, style)])


def scorecard(reports: list[Report]) -> str:
    """One line per graded exercise and the total: what `make demo` ends with."""
    lines = [_("Scorecard")]
    for r in reports:
        mark = SYMBOLS["passed"] if r.ok and r.score == r.max_score else SYMBOLS["failed" if not r.ok else "skipped"]
        lines.append(f"  {mark} {r.exercise:<11} {_num(r.score):>4}/{_num(r.max_score):<4} {r.title}")
    total, most = sum(r.score for r in reports), sum(r.max_score for r in reports)
    lines.append("  " + _("total {score}/{max}").format(score=_num(total), max=_num(most)))
    return "\n".join(lines)


def to_json(report: Report) -> str:
    return json_text(report.to_dict())


def to_junit(reports: list[Report]) -> str:
    """JUnit XML: a testsuite per exercise, a testcase per check; skipped and inconclusive are <skipped>."""
    root = ET.Element("testsuites")
    for report in reports:
        _junit_suite(root, report)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _junit_suite(root: ET.Element, report: Report) -> None:
    suite = _xml(root, "testsuite", name=report.exercise, tests=len(report.results),
                 failures=report.count("failed"), errors=report.count("error"),
                 skipped=report.count("skipped") + report.count("inconclusive"), time=f"{report.seconds:.3f}")
    props = _xml(suite, "properties")
    for key, value in (("seed", report.seed), ("sha256", report.sha256), ("sandbox", report.sandbox),
                       ("score", report.score), ("max_score", report.max_score)):
        _xml(props, "property", name=key, value=value)
    for r in report.results:
        case = _xml(suite, "testcase", classname=report.exercise, name=r.name, time=f"{r.seconds:.3f}")
        if r.status in ("failed", "error"):
            tag = "failure" if r.status == "failed" else "error"
            _xml(case, tag, r.message, message=r.message.splitlines()[0] if r.message else r.status)
        elif r.status in ("skipped", "inconclusive"):
            _xml(case, "skipped", message=f"{r.status}: {r.message}")
        if r.output:
            _xml(case, "system-out", r.output)


def _xml(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    """A child element whose every attribute and text is XML 1.0 (one student's NUL must not break the class file)."""
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def to_gradescope(reports: list[Report]) -> dict:
    """Gradescope's results.json: score, max_score, tests[] with status, output and visibility."""
    tests = []
    for report in reports:
        for r in report.results:
            output = f"{status_word(r.status)}: {r.message}" if r.message else status_word(r.status)
            if r.hint and r.status in ("failed", "error"):
                output += "\n" + _("hint: {hint}").format(hint=r.hint)
            test = {"name": visible(f"{report.exercise}: {r.title}"), "output": block(output),  # shown to students
                    "visibility": "hidden" if r.hidden and not report.reveal_hidden else "visible"}
            if r.counted:  # skipped and inconclusive checks carry no points either way
                test.update(score=r.points, max_score=r.max_points,
                            status="passed" if r.status == "passed" else "failed")
            tests.append(test)
    notes = "\n".join(f"{r.exercise}: seed {r.seed}, sha256 {r.sha256[:12]}, sandbox {r.sandbox}"
                      + (f", data {r.data}" if r.data else "")
                      + (f"\n{hidden_note(student_view(r))}" if hidden_note(student_view(r)) else "")
                      for r in reports)
    return {
        "score": sum(r.score for r in reports), "execution_time": round(sum(r.seconds for r in reports), 2),
        "output": block(notes),
        "tests": tests,
        "extra_data": {"max_score": sum(r.max_score for r in reports)},  # results.json has no top-level max_score
    }


def _num(x: float) -> str:
    return f"{x:g}"
