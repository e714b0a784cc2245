"""``user.get``, ``user.current`` and ``department.get``: the org chart as Bitrix24 shows it.

Every signed-in user may see the staff directory (as in Bitrix24's intranet); filtering is
done on the rendered rows, which is fine at org-chart sizes.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_models.org import Department, User
from strictnum import MAX_INT_DIGITS, NumberError, is_digits, parse_decimal

from .crm_methods import start_param
from .envelope import PAGE, BitrixError, ListResult
from .registry import CallContext, method

USER_FILTER_KEYS = ("ID", "ACTIVE", "EMAIL", "NAME", "LAST_NAME", "UF_DEPARTMENT", "USER_TYPE")
DEPARTMENT_FILTER_KEYS = ("ID", "NAME", "PARENT", "UF_HEAD", "SORT")
OPS = (("!@", "nin"), ("!=", "ne"), (">=", "gte"), ("<=", "lte"), ("=", "eq"), ("!", "ne"),
       (">", "gt"), ("<", "lt"), ("@", "in"), ("%", "contains"))


def user_out(u: User) -> dict[str, Any]:
    first, _, last = (u.full_name or "").partition(" ")
    return {
        "ID": str(u.id), "XML_ID": None, "ACTIVE": bool(u.active), "NAME": first,
        "LAST_NAME": last, "SECOND_NAME": "", "EMAIL": u.email, "TIME_ZONE": u.timezone,
        "LANGUAGE_ID": u.locale, "PERSONAL_GENDER": "", "WORK_POSITION": "",
        "UF_DEPARTMENT": [u.department_id] if u.department_id else [],
        "USER_TYPE": "employee", "IS_ONLINE": "N",
    }


def _split(key: str) -> tuple[str, str]:
    for prefix, op in OPS:
        if key.startswith(prefix):
            return op, key[len(prefix):].upper()
    return "eq", key.upper()


def _matches(actual: Any, op: str, wanted: Any) -> bool:
    """One filter condition on a rendered row; lists (UF_DEPARTMENT) match any element."""
    if isinstance(actual, list):
        return any(_matches(a, op, wanted) for a in actual) if op != "nin" and op != "ne" \
            else all(_matches(a, op, wanted) for a in actual)
    if isinstance(actual, bool):
        actual = "Y" if actual else "N"
        if isinstance(wanted, bool):
            wanted = "Y" if wanted else "N"
        elif isinstance(wanted, str) and wanted.lower() in ("true", "1"):
            wanted = "Y"
        elif isinstance(wanted, str) and wanted.lower() in ("false", "0"):
            wanted = "N"
    a = "" if actual is None else str(actual)
    if op in ("in", "nin"):
        values = wanted if isinstance(wanted, list) else [wanted]
        hit = a in {str(v) for v in values}
        return hit if op == "in" else not hit
    w = "" if wanted is None else str(wanted)
    if op == "contains":
        return w.casefold() in a.casefold()
    if op in ("gt", "gte", "lt", "lte"):
        try:
            x, y = parse_decimal(a), parse_decimal(w)
        except NumberError:
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              f"'{w[:40]}' cannot be compared as a number") from None
        return {"gt": x > y, "gte": x >= y, "lt": x < y, "lte": x <= y}[op]
    return (a == w) if op == "eq" else (a != w)


def _filtered(rows: list[dict[str, Any]], flt: dict[str, Any],
              allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    for key, value in flt.items():
        op, name = _split(str(key))
        if name not in allowed:
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              f"Cannot filter by '{str(key)[:40]}'; use one of: "
                              + ", ".join(allowed))
        rows = [r for r in rows if _matches(r.get(name), op, value)]
    return rows


MAX_SORT_KEYS = 10


def _sort_keys(params: dict[str, Any], default: str) -> list[tuple[str, str]]:
    """(field, ASC|DESC) pairs, most significant first. Bitrix24 takes ``sort=FIELD`` with
    ``order=ASC|DESC``, and also a map ``{FIELD: direction}`` in ``order`` (or ``sort``) — the
    shape fast_bitrix24's ``get_all`` adds to every list call (``order: {"ID": "ASC"}``). With
    a map in ``order`` a plain ``sort`` is ignored."""
    sort, order = params.get("sort"), params.get("order")
    mapping = order if isinstance(order, dict) else sort if isinstance(sort, dict) else None
    if mapping is not None:
        pairs = list(mapping.items())
        if len(pairs) > MAX_SORT_KEYS:
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              f"At most {MAX_SORT_KEYS} fields to sort by")
        if not pairs:
            pairs = [(default, "ASC")]
    else:
        if sort in (None, "", []):
            sort = default
        if order in (None, "", []):
            order = "ASC"
        pairs = [(sort, order)]
    out = []
    for name, direction in pairs:
        if not isinstance(name, str) or not isinstance(direction, str) or \
                direction.strip().upper() not in ("ASC", "DESC"):
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              "sort must be a field, order ASC or DESC")
        out.append((name.strip().upper(), direction.strip().upper()))
    return out


def _sorted(rows: list[dict[str, Any]], params: dict[str, Any], default: str) -> None:
    keys = _sort_keys(params, default)
    for key, _direction in keys:
        if rows and key not in rows[0]:
            raise BitrixError(400, "INVALID_ARG_VALUE", f"Cannot sort by '{key[:40]}'")

    def value(key: str) -> Any:
        def of(r: dict[str, Any]) -> tuple[int, Any]:
            v = r.get(key)
            if is_digits(v) and len(v) <= MAX_INT_DIGITS:
                return (0, int(v))
            return (1, str(v))
        return of

    for key, direction in reversed(keys):  # stable sorts: least significant first
        rows.sort(key=value(key), reverse=direction == "DESC")


def _page(rows: list[dict[str, Any]], params: dict[str, Any]) -> ListResult:
    start = start_param(params)
    total = None if start == -1 else len(rows)
    offset = max(start, 0)
    page = rows[offset:offset + PAGE]
    nxt = offset + len(page) if total is not None and offset + len(page) < total else None
    return ListResult(page, total, nxt)


def _top_level_filter(params: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Old methods take filter fields at the top level too (``department.get?ID=1``)."""
    flt: dict[str, Any] = {}
    for k, v in params.items():
        _op, name = _split(k)
        if name in keys:
            flt[k.upper() if k[:1].isalpha() else k[: len(k) - len(name)] + name] = v
    return flt


@method("user.get", "user")
def user_get(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "INVALID_ARG_VALUE", "FILTER must be an object")
    flt = {**_top_level_filter(params, USER_FILTER_KEYS), **flt}
    rows = [user_out(u) for u in ctx.session.scalars(select(User).order_by(User.id))]
    rows = _filtered(rows, flt, USER_FILTER_KEYS)
    _sorted(rows, params, "ID")
    return _page(rows, params)


@method("user.current", None)
def user_current(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    return user_out(ctx.user)


def department_out(d: Department) -> dict[str, Any]:
    row: dict[str, Any] = {"ID": str(d.id), "NAME": d.name, "SORT": 500}
    if d.parent_id is not None:
        row["PARENT"] = str(d.parent_id)
    row["UF_HEAD"] = str(d.head_id) if d.head_id is not None else "0"
    return row


@method("department.get", "department")
def department_get(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    # ``sort`` names the order (``sort=NAME``, ``sort={ID: ASC}``) unless it is a number: then
    # it filters the departments' SORT field, as ``department.get?SORT=500`` does.
    sort = params.get("sort")
    if (isinstance(sort, int) and not isinstance(sort, bool)) or is_digits(sort):
        params = {k: v for k, v in params.items() if k != "sort"} | {"=SORT": sort}
    flt = _top_level_filter({k: v for k, v in params.items() if k != "sort"},
                            DEPARTMENT_FILTER_KEYS)
    if isinstance(params.get("filter"), dict):
        flt.update(params["filter"])
    rows = [department_out(d) for d in ctx.session.scalars(select(Department)
                                                            .order_by(Department.id))]
    rows = _filtered(rows, flt, DEPARTMENT_FILTER_KEYS)
    _sorted(rows, params, "ID")
    return _page(rows, params)
