"""Keyset ("seek") pagination for record lists: the next page starts after the last row seen.

An offset page makes the database read and throw away every row before it, so the cost grows
with the page number; a keyset page reads only its own rows from the index that gives the
order. The cursor is opaque to clients: URL-safe base64 of ``[sort, value, id]`` — the sort
it belongs to and the last row's sort value and id (ids break ties, so the order is total).

The order is ``records.page_query``'s: the sort column (empty values last in both
directions), then id the same way.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, tuple_

from ..errors import ValidationFailed

_BAD = {"after": "is not a cursor of this list (take the 'next' of the page before)"}


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode(sort: str, value: Any, record_id: int) -> str:
    raw = json.dumps([sort, _json(value), record_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: Any, sort: str, column: Any) -> tuple[Any, int]:
    """(the last row's sort value, its id) from ``cursor``; ValidationFailed names ``after``
    when it is not a cursor of a list sorted by ``sort``."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 400:
        raise ValidationFailed(dict(_BAD))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, record_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationFailed(dict(_BAD)) from None
    if got_sort != sort or isinstance(record_id, bool) or not isinstance(record_id, int) \
            or not 0 < record_id < 2**31:
        raise ValidationFailed(dict(_BAD))
    return _typed(value, column), record_id


def _typed(value: Any, column: Any) -> Any:
    """The JSON value as the column binds it (a datetime, a date, a number as text)."""
    if value is None:
        return None
    try:  # a TypeDecorator (UTCDateTime, Money) says what it stores through its impl
        kind = getattr(column.type, "impl_instance", column.type).python_type
    except NotImplementedError:
        kind = object
    try:
        if kind is dt.datetime and isinstance(value, str):
            when = dt.datetime.fromisoformat(value)
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        if kind is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(dict(_BAD)) from None
    if isinstance(value, bool | int | float | str):
        return value
    raise ValidationFailed(dict(_BAD))


def after(column: Any, id_column: Any, *, desc: bool, value: Any,
          record_id: int) -> ColumnElement[bool]:
    """Rows that come after (``value``, ``record_id``) in the list's order. A row comparison
    ``(column, id) > (value, id)`` is what an index on (column, id) can seek to on both
    databases; empty values, last in either direction, follow every non-empty one."""
    if value is None:
        beyond = id_column < record_id if desc else id_column > record_id
        return and_(column.is_(None), beyond)
    pair, seen = tuple_(column, id_column), (value, record_id)  # bound as the columns bind
    later = pair < seen if desc else pair > seen
    return or_(later, column.is_(None)) if column.nullable else later
