"""Reports: the terminal, JSON, JUnit XML and Gradescope's results.json."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace

from labkit.grading.messages import is_import_failure
from labkit.grading.results import CheckResult, Report
from labkit.i18n import _, clip
from labkit.i18n import width as width_of
from labkit.text import block, json_text, shown_path, terminal_columns, visible, visible_lines, wrapped, xml_text

SYMBOLS = {"passed": "✓", "failed": "✗", "error": "!", "skipped": "–", "inconclusive": "?"}
COLOURS = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "inconclusive": "yellow"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # click.style's codes: no width on screen
UNWRAPPED = 1 << 20  # columns that no line reaches: text kept whole
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


def check_line(r: CheckResult, style: Callable[..., str] = _plain, columns: int | None = None, *,
               show_hint: bool = False, repeated: bool = False, wrap: bool = True) -> str:
    """One check: symbol, title, its id (what `--only` takes), points; below, why it did not pass.

    `show_hint`: the course's feedback level is "hint"; `repeated`: the same import failure was shown above;
    `wrap`: break long message lines to fit `columns` (a terminal) rather than keep them whole (a file).
    """
    columns = columns or terminal_columns()
    fit = columns if wrap else UNWRAPPED
    points = f"{_num(r.points)}/{_num(r.max_points)}" if r.counted else status_word(r.status)
    room = max(24, columns - 1 - 4 - 1 - 7)  # "  ✓ " before, " " and the points column after, one spare column
    ident = f" [{visible(r.name)}]"
    title = clip(visible(r.title), max(10, room - width_of(ident)))  # CJK takes two columns: align by columns
    lines = [f"  {style(SYMBOLS[r.status], fg=COLOURS[r.status], bold=True)} {title}"
             f"{style(ident, dim=True)}{' ' * max(0, room - width_of(title + ident))} {pad_left(points, 7)}"]
    if repeated:
        return "\n".join(lines + ["      " + _("(not run: your file could not be imported, see above)")])
    lines += wrapped(visible_lines(r.message), "      ", fit)  # it may quote the student's values
    if r.hint and show_hint and not is_import_failure(r.message):  # an import failure's hints are unrelated
        lines.append(style("      " + _("hint: {hint}").format(hint=r.hint), fg="cyan"))
    if r.artifacts:
        lines += wrapped([_("kept the files it inspected in {folder}").format(folder=shown_path(r.artifacts))],
                         "      ", fit)
    if r.status in ("failed", "error") and r.output.strip():
        out = visible_lines(r.output.rstrip())  # line by line, so a CR or ESC can neither forge nor hide a line
        lines.append("      " + _("your code printed:"))
        lines += [f"        | {line}" for line in out[:OUTPUT_LINES]]
        if len(out) > OUTPUT_LINES:
            lines.append("        | " + _("... ({n} more lines)").format(n=len(out) - OUTPUT_LINES))
    return "\n".join(lines)


class Lines:
    """Check lines as results arrive, with the course's feedback level; an import failure is told once."""

    def __init__(self, feedback: str = "message", style: Callable[..., str] = _plain, columns: int | None = None,
                 wrap: bool = True):
        self.show_hint, self.style, self.columns, self.wrap = feedback == "hint", style, columns, wrap
        self.import_failure: str | None = None

    def __call__(self, r: CheckResult) -> str:
        repeated = r.status == "error" and r.message == self.import_failure
        if r.status == "error" and is_import_failure(r.message):
            self.import_failure = r.message
        return check_line(r, self.style, self.columns, show_hint=self.show_hint, repeated=repeated, wrap=self.wrap)


def status_word(status: str) -> str:
    """A status as people read it (the English word stays the key in machine reports)."""
    return {"passed": _("passed"), "failed": _("failed"), "error": _("error"), "skipped": _("skipped"),
            "inconclusive": _("inconclusive")}[status]


def pad_left(text: str, columns: int) -> str:
    return " " * max(0, columns - width_of(text)) + text


def header_line(exercise_id: str, title: str, style: Callable[..., str] = _plain, columns: int | None = None) -> str:
    return style(clip(visible(f"{exercise_id} — {title}"), (columns or terminal_columns()) - 1), bold=True)


def count_words(report: Report) -> str:
    """"4 passed, 1 error, 6 errors"...: each status with its count, in the plural where English wants one."""
    words = {"passed": (_("{n} passed"), _("{n} passed")), "failed": (_("{n} failed"), _("{n} failed")),
             "error": (_("{n} error"), _("{n} errors")), "skipped": (_("{n} skipped"), _("{n} skipped")),
             "inconclusive": (_("{n} inconclusive"), _("{n} inconclusive"))}
    return ", ".join(words[s][report.count(s) != 1].format(n=report.count(s)) for s in SYMBOLS if report.count(s))


def gpu_note(points: float, gpus: int) -> str:
    """"+2 need 2 GPUs": points a machine without enough GPUs cannot show (empty when there are none)."""
    if not points:
        return ""
    return _("+{points} need {n} GPU(s)").format(points=_num(points), n=gpus)


def hint_pointer(report: Report) -> str:
    """Where a failing check's hint waits (unless the course shows hints inline, or nothing failed of its own)."""
    own = [r for r in report.results if r.status in ("failed", "error") and not is_import_failure(r.message)]
    if not own:
        return ""
    return (_("stuck? `labkit hint {exercise}` gives one hint at a time").format(exercise=report.exercise) + "\n"
            + _("one check again: `labkit check {exercise} --only {check}`").format(exercise=report.exercise,
                                                                                    check=own[0].name))


def summary(report: Report, style: Callable[..., str] = _plain, columns: int | None = None) -> str:
    """The closing lines: score, counts, time, seed, and the environment, each fitted to `columns` (0: unwrapped)."""
    columns = UNWRAPPED if columns == 0 else columns or terminal_columns()
    colour = "green" if report.ok else "red"
    score = style(_("Score {score}/{max}").format(score=_num(report.score), max=_num(report.max_score)), fg=colour,
                  bold=True)
    first = [score, count_words(report), f"{report.seconds:.1f} s",
             *_("seed {seed} · sandbox {sandbox}").format(seed=report.seed, sandbox=report.sandbox).split(" · ")]
    lines = joined(first, columns)
    notes = []
    if report.data:
        notes.append(_("data: {data}").format(data=report.data))
    if report.gpu_points:
        notes.append(_("{note} this machine lacks: {score}/{max} here, {total} in all").format(
            note=gpu_note(report.gpu_points, report.gpu_need), score=_num(report.score), max=_num(report.max_score),
            total=_num(report.max_score + report.gpu_points)))
    notes += hint_pointer(report).splitlines()
    if report.only:
        notes.append(_("only {checks} ran (--only): the score is partial").format(checks=", ".join(report.only)))
    if hidden_note(report):
        notes.append(hidden_note(report))
    apart = [r for r in report.results if not r.counted]
    if apart:
        notes.append(_("({n} skipped or inconclusive: they count neither for nor against the score)").format(
            n=len(apart)))
    lines += wrapped(notes, "", columns)
    fp = report.fingerprint
    if fp:
        gpus = _("{n} GPU(s)").format(n=len(fp["gpus"])) if fp.get("gpus") else _("no GPU")
        lines += joined([f"labkit {fp['labkit']}", f"Python {fp['python']}", f"torch {fp.get('torch') or 'missing'}",
                         f"CUDA {fp.get('cuda') or '-'}", gpus, _("{n} CPUs").format(n=fp["cpu_count"]),
                         _("file sha256 {sha}").format(sha=report.sha256[:12])], columns)
    return "\n".join(lines)


def joined(parts: list[str], columns: int) -> list[str]:
    """`parts` joined by " · ", a new line wherever the next part would not fit (colour codes take no room)."""
    lines: list[str] = []
    for part in parts:
        if lines and width_of(ANSI.sub("", lines[-1] + " · " + part)) <= columns - 1:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines


def terminal(report: Report, style: Callable[..., str] = _plain, columns: int | None = None) -> str:
    """The whole report as a student reads it, at the course's feedback level: `watch` passes the terminal's
    width to fit; without one (feedback files of `labkit grade`) the lines are laid out for 80 columns and
    messages are kept whole, whoever's terminal graded them."""
    line = Lines(report.feedback, style, columns or 80, wrap=columns is not None)
    body = [line(r) for r in report.results]
    return "\n".join([header_line(report.exercise, report.title, style, columns or UNWRAPPED), *body,
                      summary(report, style, columns or 0)])


def scorecard(reports: list[Report], columns: int | None = None) -> str:
    """One line per graded exercise and the total: what `make demo` ends with."""
    columns = columns or terminal_columns()
    lines = [_("Scorecard")]
    for r in reports:
        mark = SYMBOLS["passed"] if r.ok and r.score == r.max_score else SYMBOLS["failed" if not r.ok else "skipped"]
        head = f"  {mark} {r.exercise:<11} {_num(r.score):>4}/{_num(r.max_score):<4} "
        note = gpu_note(r.gpu_points, r.gpu_need)
        note = f"({note}) " if note else ""
        lines.append(head + note + clip(visible(r.title), max(10, columns - 1 - width_of(head + note))))
    total, most = sum(r.score for r in reports), sum(r.max_score for r in reports)
    gpu = sum(r.gpu_points for r in reports)
    line = "  " + _("total {score}/{max}").format(score=_num(total), max=_num(most))
    if gpu:
        line += " · " + _("+{points} need GPUs this machine lacks ({total} in all)").format(
            points=_num(gpu), total=_num(most + gpu))
    return "\n".join(lines + [line])


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
            if r.hint and r.status in ("failed", "error") and report.feedback == "hint":  # the course's level
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
