"""Type checks of gateway conditions against the CRM field schema (``crm_models.fields``).

The sandbox only knows that ``deal.company_id == 'ООО «Вектор»'`` is valid Python; at run time
the comparison fails on every deal (an id is a number). ``CrmConditionTypes.check`` finds each
comparison of a record field with a literal and reports a literal of the wrong type, naming the
field by its label, so "Validate", deploy and the dry run refuse the drawing on that flow.

Messages go through ``translate`` (the web layer passes Flask-Babel's ``gettext``; no Flask
import here), with ``%(name)s`` placeholders filled afterwards.
"""
from __future__ import annotations

import ast
from collections.abc import Callable

from crm_models.fields import SCHEMAS, Field

NUMERIC = {"money", "int", "ref", "user"}
TEXT = {"string", "text", "enum", "stage", "currency", "date"}

#: What a field of each kind holds, for the message ("a number", "text" …).
_EXPECTED = {
    "ref": "a record id (pick the record in the condition builder)",
    "user": "a user id (pick the user in the condition builder)",
    "money": "a number (written without quotes)", "int": "a number (written without quotes)",
    "bool": "yes or no (True or False)",
}


def _identity(text: str) -> str:
    return text


class CrmConditionTypes:
    """The engine's ``ConditionChecker`` for CRM records (``deal``, ``lead``, ``contact``,
    ``company`` in task data)."""

    def __init__(self, translate: Callable[[str], str] | None = None,
                 language: Callable[[], str] | None = None) -> None:
        self.translate = translate or _identity
        self.language = language or (lambda: "en")

    def check(self, expression: str) -> list[str]:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError:
            return []  # the sandbox reports it
        problems: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                    problems += self._pair(op, left, right)
        return list(dict.fromkeys(problems))

    def _pair(self, op: ast.cmpop, left: ast.expr, right: ast.expr) -> list[str]:
        field = _field(left)
        if field is not None:
            if isinstance(op, ast.In | ast.NotIn):
                if isinstance(right, ast.List | ast.Tuple | ast.Set):
                    return [m for item in right.elts for m in self._literal(field, item)]
                return []
            if isinstance(op, ast.Is | ast.IsNot):
                return []
            return self._literal(field, right)
        field = _field(right)
        if field is not None and not isinstance(op, ast.In | ast.NotIn | ast.Is | ast.IsNot):
            return self._literal(field, left)
        return []

    def _literal(self, field: Field, node: ast.expr) -> list[str]:
        if not isinstance(node, ast.Constant) or node.value is None:
            return []
        value = node.value
        if field.kind in NUMERIC:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif field.kind == "bool":
            ok = isinstance(value, bool)
        elif field.kind in TEXT:
            ok = isinstance(value, str)
        else:
            return []
        if ok:
            return []
        _ = self.translate
        expected = _(_EXPECTED.get(field.kind, "text (written in quotes)"))
        shown = repr(value) if isinstance(value, str) else str(value)
        return [_("the field «%(label)s» holds %(expected)s but is compared with %(value)s") % {
            "label": self._label(field), "expected": expected, "value": shown}]

    def _label(self, field: Field) -> str:
        try:
            ru = str(self.language() or "").startswith("ru")
        except RuntimeError:  # no request: English
            ru = False
        return field.label_ru if ru else field.label_en


def _field(node: ast.expr) -> Field | None:
    """The schema field of ``deal.amount`` (a record's own field), else None."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
        return None
    schema = SCHEMAS.get(node.value.id)
    if schema is None:
        return None
    return next((f for f in schema if f.name == node.attr), None)

