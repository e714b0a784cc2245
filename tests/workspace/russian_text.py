"""Find English left in a Russian page: the visible text of an HTML document, word by word.

What a person sees is collected: text nodes (outside ``<script>``, ``<style>``, ``<template>``
and anything marked ``translate="no"``, the HTML attribute for content that is not to be
translated: codes, XML, e-mail addresses, process keys) plus the attributes a browser shows
(``title``, ``placeholder``, ``aria-label``, ``alt`` and a button's ``value``). A word of two or
more Latin letters is English unless the allow-list names it (brand, currency and format
names) or it is part of an address, a file name or an identifier (``info@vector.example``,
``crm.js``, ``vector_head``).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

#: Latin words a Russian page may show: names of things, not words of a language.
ALLOWED = {
    "marshrut", "crm", "id", "rub", "usd", "eur", "cny", "kzt", "byn", "ru", "en", "bpmn",
    "api", "rest", "xml", "csv", "pdf", "json", "url", "http", "https", "svg", "html",
    "bitrix", "bitrix24", "utc", "gmt", "inn", "kpp", "ip", "ok", "vip", "spiffworkflow",
    "dmn", "yaml", "webhook", "cron", "iso", "png", "jpeg", "xlsx", "imap", "smtp", "starttls",
    "sla", "windows",
}
SKIPPED_ELEMENTS = {"script", "style", "template", "noscript", "textarea", "code", "pre"}
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
#: A run of non-space characters; a run holding ``@ / _ . :`` or digits with its letters is an
#: address, a file name, a code or an identifier, not a word.
TOKEN = re.compile(r"\S+")
WORD = re.compile(r"[A-Za-z]{2,}")
IDENTIFIER = re.compile(r"[@/_:]|\w\.\w|[A-Za-z]\d|\d[A-Za-z]")
#: An article code such as ``SRV-CARE`` or ``ST-CNC-16`` (capitals joined by hyphens).
CODE = re.compile(r"^\W*[A-Z0-9]+(-[A-Z0-9]+)+\W*$")
#: Spelled the same in Russian.
LOANWORDS = re.compile(r"\be-mail\b", re.IGNORECASE)


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # tag, hidden
        self.chunks: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        hidden = (self._hidden() or tag in SKIPPED_ELEMENTS or a.get("translate") == "no")
        if not hidden:
            for name in SHOWN_ATTRIBUTES:
                if a.get(name):
                    self.chunks.append(a[name] or "")
            if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                self.chunks.append(a["value"] or "")
        if tag not in VOID:
            self.stack.append((tag, hidden))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):  # forgiving about unclosed <p>, <li>
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.chunks.append(data)


def visible_text(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return parser.chunks


def english_words(html: str, allowed: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The English words of a page, each with the text around it (for the failure message)."""
    found = []
    for chunk in visible_text(html):
        for token in TOKEN.findall(chunk):
            if IDENTIFIER.search(token) or CODE.match(token):
                continue
            for word in WORD.findall(LOANWORDS.sub("", token)):
                if word.lower() not in ALLOWED and word not in allowed:
                    found.append(f"{word!r} in {' '.join(chunk.split())[:90]!r}")
    return found
