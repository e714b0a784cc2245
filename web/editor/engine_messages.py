"""The engine's validation messages in the user's language, for the process editor.

The engine (no Flask) reports problems in English with element ids inside the text; the editor
already points at the shape, so the translations leave the ids out. Messages without a pattern
here are shown as the engine wrote them.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext

from engine.errors import ValidationError

_ = gettext  # for pybabel: the msgids below are extracted from the lambdas

PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^the process has no start event$"),
     lambda m: _("the process has no start event")),
    (re.compile(r"^the process has no end event$"),
     lambda m: _("the process has no end event")),
    (re.compile(r"^user task has no assignment"),
     lambda m: _("the task does not say who gets it (Assignment)")),
    (re.compile(r"^service task has no operation"),
     lambda m: _("the action has no operation chosen")),
    (re.compile(r"^script task has no script$"), lambda m: _("the script task has no code")),
    (re.compile(r"^flow \S+ leaves gateway \S+ without a condition and is not its default flow$"),
     lambda m: _("the flow leaves a gateway without a condition and is not its default flow")),
    (re.compile(r"^sequence flow \S+ has an empty condition$"),
     lambda m: _("the flow's condition is empty")),
    (re.compile(r"^sequence flow \S+ must connect two elements of the process$"),
     lambda m: _("the flow must connect two elements of the process")),
    (re.compile(r"^the message event \S+ refers to no bpmn:message$|^bpmn:message \S+ has no name"),
     lambda m: _("pick the CRM event that starts the process")),
    (re.compile(r"^id '(?P<id>[^']*)' is reserved by the engine; rename the element$"),
     lambda m: _("the id «%(id)s» is reserved by the engine; rename the element", id=m["id"])),
    (re.compile(r"^id '(?P<id>[^']*)' is used twice$"),
     lambda m: _("the id «%(id)s» is used twice", id=m["id"])),
    (re.compile(r"^condition of flow \S+: (?P<rest>.*)$", re.S),
     lambda m: _("condition: %(problem)s", problem=m["rest"])),
]


def translate_message(message: str) -> str:
    for pattern, render in PATTERNS:
        m = pattern.match(message)
        if m:
            return render(m)
    return message


def translate_errors(errors: list[ValidationError]) -> list[ValidationError]:
    return [ValidationError(e.element_id, translate_message(e.message), e.line) for e in errors]
