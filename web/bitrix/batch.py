"""``batch``: up to 50 commands ``"method?query"`` in one call, each run (and committed) on
its own, later ones able to use earlier results through ``$result[cmd][field]…``.

The answer always has the five sections ``result``, ``result_error``, ``result_total``,
``result_next`` and ``result_time`` (an empty one is ``[]``, as PHP encodes it). With ``halt``
the first failing command stops the rest. A nested ``batch`` is refused per command with
405 ``ERROR_BATCH_METHOD_NOT_ALLOWED``, as Bitrix24 does.
"""
from __future__ import annotations

import re
import time
from contextlib import nullcontext
from typing import Any

from flask import current_app

from strictnum import MAX_INT_DIGITS, is_digits

from .envelope import BitrixError, ListResult, time_block
from .params import parse_query_string
from .registry import CallContext, invoke, method

MAX_COMMANDS = 50
REF_RE = re.compile(r"\$(result|result_total|result_next)((?:\[[^\[\]]*\])+)")
KEY_RE = re.compile(r"\[([^\[\]]*)\]")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "y", "yes", "on")
    return bool(value)


def _resolve(ref: str, section: str, path: str, sections: dict[str, dict[str, Any]]) -> Any:
    node: Any = sections[section]
    for key in KEY_RE.findall(path):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and is_digits(key) and len(key) <= MAX_INT_DIGITS \
                and int(key) < len(node):
            node = node[int(key)]
        else:
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              f"Batch reference {ref[:80]} does not point at an earlier result")
    return node


def substitute(value: Any, sections: dict[str, dict[str, Any]]) -> Any:
    """Replace ``$result[…]`` references in every string of ``value``. A string that is one
    whole reference takes the referenced value itself; inside text it is written as text."""
    if isinstance(value, dict):
        return {k: substitute(v, sections) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, sections) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value
    whole = REF_RE.fullmatch(value)
    if whole:
        return _resolve(value, whole.group(1), whole.group(2), sections)

    def text(m: re.Match[str]) -> str:
        found = _resolve(m.group(0), m.group(1), m.group(2), sections)
        if isinstance(found, (dict, list)):
            raise BitrixError(400, "INVALID_ARG_VALUE",
                              f"Batch reference {m.group(0)[:80]} is not a single value")
        return "" if found is None else str(found)

    return REF_RE.sub(text, value)


def _commands(raw: Any) -> list[tuple[str, Any]]:
    if raw in (None, "", []):
        return []
    if isinstance(raw, list):
        return [(str(i), c) for i, c in enumerate(raw)]
    if isinstance(raw, dict):
        return [(str(k), c) for k, c in raw.items()]
    raise BitrixError(400, "INVALID_REQUEST", "cmd must be an object or array of commands")


def _run_one(ctx: CallContext, command: Any, sections: dict[str, dict[str, Any]]) -> Any:
    if not isinstance(command, str) or not command.strip():
        raise BitrixError(400, "INVALID_REQUEST", "Each command must be 'method?parameters'")
    name, _, query = command.strip().partition("?")
    name = name.strip().removesuffix(".json")
    if name.lower() == "batch":
        raise BitrixError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED",
                          "Method is not allowed for batch usage")
    params = substitute(parse_query_string(query), sections)
    return invoke(ctx, name, params)


def _section(values: dict[str, Any]) -> dict[str, Any] | list[Any]:
    return values if values else []


@method("batch", None)
def batch(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    commands = _commands(params.get("cmd"))
    if len(commands) > MAX_COMMANDS:
        raise BitrixError(400, "ERROR_BATCH_LENGTH_EXCEEDED",
                          f"Max batch length exceeded ({len(commands)} > {MAX_COMMANDS})")
    halt = _truthy(params.get("halt", 0))
    sections: dict[str, dict[str, Any]] = {"result": {}, "result_total": {}, "result_next": {}}
    errors: dict[str, Any] = {}
    times: dict[str, Any] = {}
    # The commands' events are routed together when the batch ends (bulk dispatch: N per
    # transaction), not one transaction per command; a later command of the same batch sees
    # the records as the command wrote them, before any process acted on them.
    dispatcher = current_app.extensions.get("dispatcher")
    with dispatcher.deferred() if dispatcher is not None else nullcontext():
        _run_all(ctx, commands, halt, sections, errors, times)
    return {"result": _section(sections["result"]), "result_error": _section(errors),
            "result_total": _section(sections["result_total"]),
            "result_next": _section(sections["result_next"]), "result_time": _section(times)}


def _run_all(ctx: CallContext, commands: list[tuple[str, Any]], halt: bool,
             sections: dict[str, dict[str, Any]], errors: dict[str, Any],
             times: dict[str, Any]) -> None:
    for key, command in commands:
        started = time.time()
        try:
            result = _run_one(ctx, command, sections)
        except BitrixError as err:
            errors[key] = err.body()
            if halt:
                break
            continue
        if isinstance(result, ListResult):
            sections["result"][key] = result.items
            if result.total is not None:
                sections["result_total"][key] = result.total
            if result.next is not None:
                sections["result_next"][key] = result.next
        else:
            sections["result"][key] = result
        times[key] = time_block(started, ctx.tz)
