"""English and Simplified Chinese: the language choice, the catalog, zh_CN output and wide-character layout."""

from __future__ import annotations

import gettext
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit import i18n
from labkit.cli.main import cli
from labkit.course.course import all_exercises
from labkit.grading.report import check_line
from labkit.grading.results import CheckResult

ROOT = Path(__file__).resolve().parent.parent
TOY = Path(__file__).parent / "toy"
SOURCES = sorted((ROOT / "labkit").rglob("*.py")) + sorted((ROOT / "exercises").glob("*/checks.py"))


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language("en")  # the language is per process: leave it as the other tests expect


@pytest.mark.parametrize("explicit, env, want", [
    (None, {}, "en"),
    (None, {"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    (None, {"LANG": "zh_CN.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"),  # LC_ALL outranks LANG, as in libc
    (None, {"LANG": "en_US.UTF-8", "LABKIT_LANG": "zh_CN"}, "zh_CN"),
    ("en", {"LABKIT_LANG": "zh_CN"}, "en"),  # --lang outranks everything
    (None, {"LANG": "de_DE.UTF-8"}, "en"),
])
def test_the_language_is_chosen_in_order(explicit, env, want):
    assert i18n.choose(explicit, env) == want


def test_every_translatable_string_is_in_the_catalog_and_nothing_stale():
    wanted = i18n.extract(SOURCES)
    catalog = {k: v for k, v in i18n.parse_po(i18n.CATALOG).items() if k}
    assert len(wanted) >= 30
    assert [m for m in wanted if not catalog.get(m)] == [], "untranslated: run the extraction and translate"
    assert sorted(set(catalog) - set(wanted)) == [], "the catalog has strings the code no longer uses"
    for msgid, msgstr in catalog.items():  # the same {fields}, or .format() would fail in Chinese only
        assert sorted(re.findall(r"{\w*}", msgid)) == sorted(re.findall(r"{\w*}", msgstr)), msgid


def test_the_catalog_compiles_for_the_standard_gettext():
    translations = gettext.GNUTranslations(io.BytesIO(i18n.compile_po(i18n.CATALOG)))
    assert translations.gettext("passed") == "通过"
    assert translations.gettext("not in the catalog") == "not in the catalog"
    assert "charset=UTF-8" in translations.info().get("content-type", "")


def test_a_failing_starter_in_chinese_has_no_english_ui_words(tmp_path):
    starter = (TOY / "exercise99" / "starter.py").read_text()
    (tmp_path / "exercise99.py").write_text(starter)
    args = ["--lang", "zh_CN", "check", "exercise99", "--file", str(tmp_path / "exercise99.py"), "--sandbox", "none"]
    result = CliRunner().invoke(cli, args, env={"LABKIT_EXERCISES": str(TOY)})
    out = result.output
    assert result.exit_code == 1, out
    assert "尚未实现" in out and "得分 0/5" in out and "需要 8 块 GPU" in out and "随机种子" in out
    english = [m.split("{")[0].strip(" :(") for m in i18n.extract(SOURCES[:len(list((ROOT / 'labkit').rglob('*.py')))])]
    leaked = [w for w in english if len(w) > 10 and w in out]  # short words may sit in English check titles
    assert leaked == [], leaked


def test_locale_and_env_choose_chinese_and_json_keys_stay_english(tmp_path):
    (tmp_path / "exercise99.py").write_text((TOY / "exercise99" / "starter.py").read_text())
    env = {"LABKIT_EXERCISES": str(TOY), "LANG": "zh_CN.UTF-8"}
    result = CliRunner().invoke(cli, ["check", "99", "--file", str(tmp_path / "exercise99.py"), "--json",
                                      "--sandbox", "none"], env=env)
    (data,) = json.loads(result.output)  # --json is always a list, one report per exercise
    assert {"score", "max_score", "results"} <= set(data)
    assert {r["status"] for r in data["results"]} <= {"error", "skipped"}  # statuses are keys: never translated
    assert any("尚未实现" in r["message"] for r in data["results"])  # the words people read are


def test_wide_characters_keep_the_columns_aligned():
    i18n.set_language("zh_CN")
    english = CheckResult("a", "add works on random numbers", "passed", 1, 1)
    chinese = CheckResult("b", "在随机数上 add 的结果正确（宽字符）", "skipped", 0, 1)
    lines = [check_line(r).splitlines()[0] for r in (english, chinese)]
    assert [i18n.width(line) for line in lines] == [i18n.width(lines[0])] * 2
    long = CheckResult("c", "很长的标题" * 30, "passed", 1, 1)
    assert i18n.width(check_line(long).splitlines()[0]) == i18n.width(lines[0]) and "…" in check_line(long)


def test_hints_in_chinese_come_from_exercise_toml(tmp_path):
    ex = all_exercises()[0]
    result = CliRunner().invoke(cli, ["--lang", "zh_CN", "hint", ex.id])
    assert ex.hints_zh[0] in result.output and "的提示 1/" in result.output


@pytest.mark.parametrize("exercise", [ex.id for ex in all_exercises()])
def test_every_exercise_speaks_both_languages(exercise):
    ex = next(e for e in all_exercises() if e.id == exercise)
    zh = ex.folder / "README.zh-CN.md"
    assert zh.exists() and len(ex.hints_zh) == len(ex.hints) > 0
    blocks = [re.findall(r"```.*?```", p.read_text(encoding="utf-8"), re.S) for p in (ex.folder / "README.md", zh)]
    assert blocks[0] == blocks[1], "the two statements must hold the same code blocks, in the same order"


@pytest.mark.parametrize("exercise", [ex.id for ex in all_exercises()])
def test_every_check_title_and_hint_speak_both_languages(exercise):
    from labkit.grading.plan import load_checks

    ex = next(e for e in all_exercises() if e.id == exercise)
    assert ex.title_zh
    for c in load_checks(ex)[0]:
        assert c.title_zh and i18n.width(c.title_zh) > 4, c.name
        assert (c.hint is None) == (c.hint_zh is None), c.name


def test_a_real_starter_in_chinese_shows_chinese_titles_and_hints(tmp_path):
    from labkit.course.course import resolve

    ex = resolve("exercise1")
    (tmp_path / "exercise1.py").write_text(ex.starter.read_text())
    args = ["--lang", "zh_CN", "check", "1", "--file", str(tmp_path / "exercise1.py"), "--sandbox", "none"]
    out = CliRunner().invoke(cli, args).output
    assert ex.title_zh in out and "卡住了？`labkit hint exercise1`" in out and "提示：" not in out  # hints wait
    assert ex.title not in out and "falls back to the CPU" not in out  # English titles stay behind
    (tmp_path / "course.toml").write_text('feedback = "hint"\n')  # a course that shows each check's hint
    out = CliRunner().invoke(cli, args, env={"LABKIT_COURSE": str(tmp_path / "course.toml")}).output
    assert "提示：" in out and "falls back to the CPU" not in out
