"""Untrusted XML (uploaded BPMN/DMN) parsed safely.

Two gates: ``defusedxml`` first refuses any DOCTYPE, entity declaration or external reference
(billion laughs, ``file:///etc/passwd`` entities, external DTDs) without expanding anything;
then lxml parses with entity resolution, DTD loading, network access and huge trees off, and
the result is checked once more for a DOCTYPE. Size is capped before either parser runs.
"""
from __future__ import annotations

import re
from typing import Any

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from lxml import etree

MAX_XML_BYTES = 2_000_000
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or uses DTDs/entities."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _parser() -> etree.XMLParser:
    # A new parser per document: lxml parsers keep state and are not thread-safe.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_pis=True,
                           remove_comments=True)


def parse_xml(text: str | bytes, *, what: str = "XML") -> Any:
    """The root element of ``text`` or ``UnsafeXml`` saying what is wrong (with a line)."""
    if isinstance(text, str):
        # lxml refuses str input carrying an encoding declaration; the text is already decoded.
        data = _DECLARATION.sub("", text, count=1).encode("utf-8")
    elif isinstance(text, bytes):
        data = text
    else:
        raise UnsafeXml(f"{what} must be text")
    if not data.strip():
        raise UnsafeXml(f"{what} is empty")
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXml(f"{what} is larger than {MAX_XML_BYTES // 1_000_000} MB")
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXml(f"{what} must not contain a DOCTYPE, entities or external references "
                        f"({type(exc).__name__})") from None
    except DefusedET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise UnsafeXml(f"{what} is not well-formed XML: {exc}", line) from None
    except (ValueError, UnicodeError) as exc:
        raise UnsafeXml(f"{what} is not readable XML: {exc}") from None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"{what} is not well-formed XML: {exc.msg}", exc.lineno) from None
    if root.getroottree().docinfo.doctype:
        raise UnsafeXml(f"{what} must not contain a DOCTYPE")
    return root
