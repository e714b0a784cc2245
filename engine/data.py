"""Task data is JSON: helpers that enforce it and describe changes for the history."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .errors import EngineError

MAX_HISTORY_VALUE = 500  # characters of one value kept in a history diff


def to_json(value: Any, *, where: str = "data") -> Any:
    """``value`` as plain JSON values: Decimal → decimal string, date → ISO text, tuple → list.

    Anything else that JSON cannot hold (sets, ranges, objects) raises ``EngineError`` naming
    the path, so it is caught when written rather than when the instance is next loaded.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EngineError(f"{where} is not a finite number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise EngineError(f"{where} is not a finite number")
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EngineError(f"{where} has a non-text key {k!r}")
            out[k] = to_json(v, where=f"{where}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [to_json(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    raise EngineError(f"{where} holds a {type(value).__name__}, which task data cannot store")


def normalize_in_place(data: dict[str, Any]) -> None:
    """Replace every value of ``data`` by its JSON form (see ``to_json``)."""
    for key in list(data):
        data[key] = to_json(data[key], where=key)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys that changed: ``{key: [old, new]}`` (absent → None), values truncated."""
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            out[key] = [_clip(old), _clip(new)]
    return out


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_HISTORY_VALUE:
        return value[:MAX_HISTORY_VALUE] + "…"
    if isinstance(value, dict | list):
        import json

        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > MAX_HISTORY_VALUE:
            return text[:MAX_HISTORY_VALUE] + "…"
    return value
