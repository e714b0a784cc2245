"""Every message of the process editor's pages and API has a Russian catalog entry (issue 13:
"Full Russian"); the editor's own client strings live in editor/src/editor/i18n.js."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}


def editor_messages() -> set[tuple[str | None, str]]:
    found = set()
    files = [(p, "python") for p in (ROOT / "web" / "editor").glob("*.py")]
    files += [(ROOT / "web" / "api" / name, "python") for name in ("editor.py", "processes.py")]
    files += [(p, "jinja2") for p in (ROOT / "web" / "templates" / "editor").glob("*.html")]
    for path, method in files:
        for _line, msg, _comments, context in extract_from_file(method, str(path),
                                                                 keywords=KEYWORDS):
            found.add((context, msg if isinstance(msg, str) else msg[0]))
    return found


def test_the_editor_speaks_russian():
    wanted = editor_messages()
    assert len(wanted) > 60
    path = ROOT / "web" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    have = {(m.context, m.id if isinstance(m.id, str) else m.id[0])
            for m in catalog if m.id and m.string and not m.fuzzy}
    assert sorted(wanted - have, key=str) == []


def test_operation_parameter_labels_are_in_the_catalog():
    from web.api.processes import PARAM_LABELS

    path = ROOT / "web" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    have = {m.id for m in catalog if m.context == "operation parameter" and m.string}
    assert set(PARAM_LABELS.values()) <= have
