"""Every message of the workspace pages has a Russian and an English catalog entry."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_pgettext": ((1, "c"), 2)}


def workspace_messages() -> set[tuple[str | None, str]]:
    found = set()
    files = [(p, "python") for p in (ROOT / "web" / "workspace").glob("*.py")]
    files += [(p, "jinja2") for p in (ROOT / "web" / "templates" / "workspace").glob("*.html")]
    for path, method in files:
        options = {"extensions": "jinja2.ext.loopcontrols"} if method == "jinja2" else {}
        for _line, msg, _comments, context in extract_from_file(method, str(path),
                                                                 keywords=KEYWORDS,
                                                                 options=options):
            found.add((context, msg if isinstance(msg, str) else msg[0]))
    return found


def test_the_workspace_speaks_russian_and_english():
    wanted = workspace_messages()
    assert len(wanted) > 80
    for lang in ("ru", "en"):
        path = ROOT / "web" / "translations" / lang / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        have = {(m.context, m.id) for m in catalog if m.id and m.string and not m.fuzzy}
        assert sorted(wanted - have, key=str) == [], lang
