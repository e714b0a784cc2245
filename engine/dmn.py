"""DMN 1.3 hit policies on top of SpiffWorkflow's decision tables.

The library knows UNIQUE (without checking uniqueness) and COLLECT (without aggregation) and
treats anything else as "first match". Here every policy is applied to the full list of
matching rules:

* UNIQUE — at most one rule may match; two or more is an error naming the rules.
* ANY — several may match if their outputs are equal; otherwise an error.
* FIRST — the first matching rule in table order.
* PRIORITY — the matching rule whose outputs rank first in the outputs' ``outputValues``
  lists (the order written there is the priority order).
* COLLECT — a list per output in rule order; with ``aggregation`` SUM, MIN, MAX or COUNT a
  single value (COUNT: the number of matching rules; SUM/MIN/MAX of no rule: None).
* RULE ORDER — lists in rule order; OUTPUT ORDER — lists ordered by priority as PRIORITY.

Deploy refuses an unknown policy or aggregation naming the decision (:func:`check_table`).
No rule matching gives no outputs (the data are left as they were) except COLLECT/… lists
(empty) and COUNT (0).
"""
from __future__ import annotations

import ast
from collections import OrderedDict
from typing import Any

POLICIES = ("UNIQUE", "FIRST", "PRIORITY", "ANY", "COLLECT", "RULE ORDER", "OUTPUT ORDER")
AGGREGATIONS = ("SUM", "MIN", "MAX", "COUNT")
ORDERED = ("PRIORITY", "OUTPUT ORDER")


class DecisionError(ValueError):
    """A decision table's policy is violated at run time (the instance gets an incident)."""


def _local(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def _values(output: Any) -> list[Any]:
    """The literal values of an output's ``outputValues`` (its priority order)."""
    node = next((c for c in output if _local(c) == "outputValues"), None)
    text_el = next((c for c in node if _local(c) == "text"), None) if node is not None else None
    text = (text_el.text if text_el is not None else "") or ""
    if not text.strip():
        return []
    try:
        parsed = ast.literal_eval(f"[{text}]")
    except (ValueError, SyntaxError):
        raise ValueError(f"outputValues '{text.strip()}' must be a comma-separated list of "
                         "literals, e.g. \"high\", \"normal\", \"low\"") from None
    return list(parsed)


def table_of(decision: Any) -> Any:
    return next((c for c in decision if _local(c) == "decisionTable"), None)


def table_info(decision: Any) -> dict[str, Any]:
    """What the run needs beyond the library's table: policy, aggregation, priority lists."""
    table = table_of(decision)
    if table is None:
        return {}
    info: dict[str, Any] = {
        "hit_policy": " ".join((table.get("hitPolicy") or "UNIQUE").upper().split()),
        "aggregation": (table.get("aggregation") or "").strip().upper() or None,
        "priorities": {}}
    for out in (c for c in table if _local(c) == "output"):
        try:
            values = _values(out)
        except ValueError:
            values = []
        if values:
            info["priorities"][out.get("name") or out.get("label") or ""] = values
    return info


def check_table(decision: Any) -> list[str]:
    """Problems with a decision's hit policy (messages name the decision)."""
    did = decision.get("id", "?")
    table = table_of(decision)
    if table is None:
        return [f"decision {did} has no decisionTable"]
    policy = " ".join((table.get("hitPolicy") or "UNIQUE").upper().split())
    aggregation = (table.get("aggregation") or "").strip().upper()
    problems = []
    if policy not in POLICIES:
        problems.append(f"decision {did}: unknown hit policy '{table.get('hitPolicy')}' "
                        f"(known: {', '.join(POLICIES)})")
    if aggregation and policy != "COLLECT":
        problems.append(f"decision {did}: aggregation {aggregation} needs hit policy COLLECT")
    elif aggregation and aggregation not in AGGREGATIONS:
        problems.append(f"decision {did}: unknown aggregation '{table.get('aggregation')}' "
                        f"(known: {', '.join(AGGREGATIONS)})")
    outputs = [c for c in table if _local(c) == "output"]
    if aggregation and len(outputs) != 1:
        problems.append(f"decision {did}: COLLECT {aggregation} needs exactly one output")
    for out in outputs:
        try:
            _values(out)
        except ValueError as exc:
            problems.append(f"decision {did}, output {out.get('name') or out.get('id')}: {exc}")
    if policy in ORDERED and not any(_values_or_empty(o) for o in outputs):
        problems.append(f"decision {did}: hit policy {policy} needs outputValues on an output "
                        "(the priority order of its values)")
    return problems


def _values_or_empty(out: Any) -> list[Any]:
    try:
        return _values(out)
    except ValueError:
        return []


def _rank(outputs: dict[str, Any], priorities: dict[str, list[Any]]) -> tuple[int, ...]:
    ranks = []
    for name, order in priorities.items():
        value = outputs.get(name)
        ranks.append(order.index(value) if value in order else len(order))
    return tuple(ranks)


def decide(engine: Any, info: dict[str, Any], task: Any) -> dict[str, Any]:
    """The outputs of the decision for ``task``'s data under ``info``'s hit policy."""
    table = engine.decision_table
    policy = info.get("hit_policy") or "UNIQUE"
    check = engine._DMNEngine__check_rule  # the library's matcher (private, name-mangled)
    matched = [r for r in table.rules if check(r, task)]
    outs = [(r, r.output_as_dict(task)) for r in matched]
    names = [o.name or o.label for o in table.outputs]
    rows = ", ".join(str(r.row_number) for r in matched)
    if policy == "UNIQUE":
        if len(matched) > 1:
            raise DecisionError(f"decision {table.id}: hit policy UNIQUE, but rules {rows} "
                                "all match")
        return outs[0][1] if outs else {}
    if policy == "ANY":
        if any(o != outs[0][1] for _r, o in outs[1:]):
            raise DecisionError(f"decision {table.id}: hit policy ANY, but matching rules "
                                f"{rows} give different outputs")
        return outs[0][1] if outs else {}
    if policy == "FIRST":
        return outs[0][1] if outs else {}
    priorities = info.get("priorities") or {}
    if policy in ORDERED:
        outs = sorted(outs, key=lambda ro: _rank(ro[1], priorities))  # stable: rule order
        if policy == "PRIORITY":
            return outs[0][1] if outs else {}
    result: dict[str, Any] = OrderedDict((n, [o.get(n) for _r, o in outs]) for n in names)
    aggregation = info.get("aggregation")
    if policy == "COLLECT" and aggregation:
        name = names[0]
        values = [v for v in result[name] if v is not None]
        if aggregation == "COUNT":
            return {name: len(outs)}
        if not values:
            return {name: None}
        fn = {"SUM": sum, "MIN": min, "MAX": max}[aggregation]
        try:
            return {name: fn(values)}
        except TypeError as exc:
            raise DecisionError(f"decision {table.id}: cannot {aggregation} the outputs of "
                                f"rules {rows}: {exc}") from None
    return dict(result)
