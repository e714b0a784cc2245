"""Task data is JSON: helpers that enforce it and describe changes for the history."""
from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from .errors import EngineError

MAX_HISTORY_VALUE = 500  # characters of one value kept in a history diff
MAX_HISTORY_KEYS = 50  # changed keys listed in one history diff


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


_ATOMS = (str, int, float, bool, type(None))


def copy_data(value: Any) -> Any:
    """A deep copy of task data: plain dicts and lists by a direct walk (several times
    faster than ``copy.deepcopy``, which keeps a memo of every object), anything else —
    a value JSON cannot hold, a container subclass — by ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: copy_data(v) for k, v in value.items()}
    if kind is list:
        return [copy_data(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def normalize_in_place(data: dict[str, Any]) -> None:
    """Replace every value of ``data`` by its JSON form (see ``to_json``)."""
    for key in list(data):
        data[key] = to_json(data[key], where=key)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys that changed: ``{key: [old, new]}`` (absent → None), values truncated."""
    out: dict[str, Any] = {}
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    for key in changed[:MAX_HISTORY_KEYS]:
        out[key] = [_clip(before.get(key)), _clip(after.get(key))]
    if len(changed) > MAX_HISTORY_KEYS:
        out["…"] = [None, f"{len(changed) - MAX_HISTORY_KEYS} more keys changed"]
    return out


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_HISTORY_VALUE:
        return value[:MAX_HISTORY_VALUE] + "…"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > MAX_HISTORY_VALUE:
            return text[:MAX_HISTORY_VALUE] + "…"
    return value


def data_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (what the instance's stored state grows by)."""
    return len(json.dumps(value, default=str, separators=(",", ":")))  # ASCII: chars = bytes


def shorten(value: Any, *, max_chars: int = 2000, max_items: int = 100,
            depth: int = 8) -> Any:
    """``value`` cut down for display: long strings end in "…", long lists and objects keep
    their first ``max_items`` entries and say how many were left out, deep nesting is cut."""
    if isinstance(value, str):
        return value if len(value) <= max_chars else value[:max_chars] + "…"
    if isinstance(value, dict):
        if depth <= 0:
            return f"{{… {len(value)} keys}}"
        out = {str(k): shorten(v, max_chars=max_chars, max_items=max_items, depth=depth - 1)
               for k, v in list(value.items())[:max_items]}
        if len(value) > max_items:
            out["…"] = f"{len(value) - max_items} more keys"
        return out
    if isinstance(value, list | tuple):
        if depth <= 0:
            return f"[… {len(value)} items]"
        items = [shorten(v, max_chars=max_chars, max_items=max_items, depth=depth - 1)
                 for v in list(value[:max_items])]
        if len(value) > max_items:
            items.append(f"… {len(value) - max_items} more items")
        return items
    return value
