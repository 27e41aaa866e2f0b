"""Gradescope's submission export: `submission_metadata.yml`, read with PyYAML's safe_load (imported only here,
only when an export is found)."""

from __future__ import annotations


class MetadataError(ValueError):
    """submission_metadata.yml is not YAML, or not shaped like Gradescope's export."""


def parse_metadata(text: str) -> dict[str, list[dict[str, str]]]:
    """{submission folder: [{name, sid, email}]} from Gradescope's YAML (Ruby symbol keys such as `:sid:`).

    Values come back as text ("" for none): an unquoted sid such as 1003 is the id "1003", not a number.
    """
    import yaml  # only a class that came as a Gradescope export pays for it

    try:
        data = yaml.safe_load(text)  # safe_load: tags such as !ruby/object build nothing, they fail
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise MetadataError(f"submission_metadata.yml is not valid YAML{line}: "
                            f"{getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MetadataError("submission_metadata.yml does not map submission folders to their submitters")
    subs: dict[str, list[dict[str, str]]] = {}
    for folder, submission in data.items():
        fields = _keyed(submission)
        people = fields.get("submitters")
        people = people if isinstance(people, list) else []
        subs[str(folder)] = [{k: _text(v) for k, v in _keyed(p).items() if k in ("name", "sid", "email")}
                             for p in people if isinstance(p, dict)]
    return subs


def _keyed(value: object) -> dict[str, object]:
    """A mapping with Ruby's symbol colon dropped from its keys (`:sid` -> `sid`); {} for anything else."""
    if not isinstance(value, dict):
        return {}
    return {str(k).lstrip(":"): v for k, v in value.items()}


def _text(value: object) -> str:
    """A scalar as text: "" for null; numbers as written (1003, not 1003.0 unless it was)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip()
