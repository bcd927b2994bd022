"""The configuration reference in docs/ is made from the config's types (docs/hooks/
config_reference.py, run by MkDocs at each build): every field must carry the comment that
documents it, and the page must hold every section and field the file takes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "hooks" / "config_reference.py")
reference = sys.modules["config_reference"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def test_every_config_field_is_documented():
    assert reference.undocumented() == []


def test_the_reference_holds_every_section_and_field():
    page = reference.render()
    keys = [section.key for section in reference.sections()]
    for expected in ("", "models[]", "models[].deployments[]", "models[].price", "models[].local", "projects[].keys[]", "mcp_servers[]", "embeddings"):
        assert expected in keys, expected
    for section in reference.sections():
        for field in msgspec.structs.fields(section.kind):
            assert f"| `{field.name}` |" in page, f"{section.key}.{field.name}"
    assert "| `timeout` | float (> 0) | `600.0` | between two events" in page  # inherited limits, with their defaults
    assert "| `name` | str (at least 1 long) | required |" in page


def test_a_field_without_a_comment_is_found(monkeypatch):
    """The check itself can fail: a field whose comment is taken away is reported."""
    real = reference._comments

    def without_weight(kind):
        found = real(kind)
        found.pop("weight", None)
        return found

    monkeypatch.setattr(reference, "_comments", without_weight)
    assert reference.undocumented() == ["models[].deployments[].weight"]


def test_the_configuration_page_has_the_marker_the_hook_replaces():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert reference.MARKER in page
    assert reference.on_page_markdown(page, page=None).count("## `models[]`") == 1
