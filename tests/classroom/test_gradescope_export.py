"""Gradescope's submission_metadata.yml read with PyYAML's safe_load: escaped Unicode, comments, folded and flow
styles, Ruby symbol keys; a malformed or tagged file is a one-line refusal; PyYAML loads only for an export."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sandboxes import SANDBOX

from labkit.classroom.gradescope_export import MetadataError, parse_metadata
from labkit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

ESCAPED = r'''
submission_11:
  :submitters:
  - :name: "Jos\u00e9 Mar\u00eda \"Pepe\" Garc\u00eda"
    :sid: '2001'
    :email: "jose\u0040example.edu"
  :created_at: 2026-11-20 10:00:00.000000000 -08:00
'''

COMMENTED = '''\
# Gradescope export, assignment 42
submission_12:   # the first
  :submitters:
  # a comment inside the list, indented like a key
  - :name: 'Zoë O''Neil'   # apostrophes doubled in single quotes
    :sid: '2002' # transferred from section B
    :email: zoe@example.edu
  :score: 7.5 # out of 9
'''

FOLDED = '''\
submission_13:
  :submitters:
  - :name: >-
      Maximilian Alexander
      von Humboldt-Steinberg
    :sid: |-
      2003
    :email: max@example.edu
  - :name: Group Partner
    :sid: 2004
    :email:
'''

FLOW = '''\
submission_14: {":submitters": [{":name": "Flow Style", ":sid": "2005", ":email": "flow@example.edu"}],
  ":score": 9.0}
'''

HISTORY = '''\
submission_15:
  :score: 3.0
  :history:
  - :submitters:
    - :name: Not A Submitter
      :sid: '9999'
  :submitters:
  - :email: only-email@example.edu
    :sid: ''
    :name: Email Only
'''


@pytest.mark.parametrize("text, want", [
    (ESCAPED, {"submission_11": [{"name": 'José María "Pepe" García', "sid": "2001", "email": "jose@example.edu"}]}),
    (COMMENTED, {"submission_12": [{"name": "Zoë O'Neil", "sid": "2002", "email": "zoe@example.edu"}]}),
    (FOLDED, {"submission_13": [{"name": "Maximilian Alexander von Humboldt-Steinberg", "sid": "2003",
                                 "email": "max@example.edu"},
                                {"name": "Group Partner", "sid": "2004", "email": ""}]}),
    (FLOW, {"submission_14": [{"name": "Flow Style", "sid": "2005", "email": "flow@example.edu"}]}),
    (HISTORY, {"submission_15": [{"email": "only-email@example.edu", "sid": "", "name": "Email Only"}]}),
], ids=["escaped-unicode", "comments", "folded-and-block", "flow-style", "history-is-not-submitters"])
def test_real_looking_exports(text, want):
    assert parse_metadata(text) == want


@pytest.mark.parametrize("text, phrase", [
    ("submission_1:\n  :submitters:\n  - :name: [unclosed\n", "not valid YAML (line"),
    ("submission_1: !ruby/object:Submission\n  id: 1\n", "not valid YAML"),  # safe_load builds no object
    ("- just\n- a list\n", "does not map submission folders"),
])
def test_malformed_metadata_is_refused(text, phrase):
    with pytest.raises(MetadataError) as caught:
        parse_metadata(text)
    assert phrase in str(caught.value)


def test_pyyaml_is_imported_only_when_an_export_is_found(tmp_path):
    (tmp_path / "plain" / "alice").mkdir(parents=True)
    (tmp_path / "plain" / "alice" / "exercise2.py").write_text("x = 1\n")
    (tmp_path / "gs" / "submission_1").mkdir(parents=True)
    (tmp_path / "gs" / "submission_1" / "exercise2.py").write_text("x = 1\n")
    (tmp_path / "gs" / "submission_metadata.yml").write_text(COMMENTED.replace("submission_12", "submission_1"))
    code = ("import sys; from labkit.classroom.intake import collect; "
            f"collect({str(tmp_path / 'plain')!r}, {str(tmp_path / 's1')!r}, filename='exercise2.py'); "
            "print('yaml' in sys.modules); "
            f"e = collect({str(tmp_path / 'gs')!r}, {str(tmp_path / 's2')!r}, filename='exercise2.py'); "
            "print('yaml' in sys.modules, e[0].student)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "2002"]


def test_grade_reads_an_export_and_refuses_a_broken_one_in_one_line(tmp_path):
    export = tmp_path / "export"
    (export / "submission_11").mkdir(parents=True)
    (export / "submission_11" / "exercise1.py").write_text((ROOT / "solutions" / "exercise1.py").read_text())
    (export / "submission_metadata.yml").write_text(ESCAPED, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["grade", str(export), "-e", "1", "--jobs", "1", "--out", str(out), *SANDBOX])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8")))
    assert (row["student"], row["name"], row["status"]) == ("2001", 'José María "Pepe" García', "graded")
    (export / "submission_metadata.yml").write_text("submission_11: !ruby/object:Submission\n  id: 1\n")
    broken = CliRunner().invoke(cli, ["grade", str(export), "-e", "1", "--out", str(tmp_path / "o2")])
    assert broken.exit_code == 2 and "Traceback" not in broken.output, broken.output
    assert "submission_metadata.yml is not valid YAML" in broken.output and len(broken.output.splitlines()) == 1
