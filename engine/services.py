"""The registry of service operations that BPMN service tasks may call, by name.

The ``automation`` package registers one operation per CRM action at start-up and hands the
registry to the ``Engine``. Parameters are checked against ``OperationSpec.params`` when a
definition is deployed, so a typo in the editor is a deploy error, not a runtime incident.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from strictnum import NumberError, parse_decimal, parse_int

from .errors import EngineError
from .extensions import ServiceTaskConfig, parse_duration
from .ports import OperationSpec, ParamSpec, ServiceOperation


class ServiceRegistry:
    """Operations by name; ``register`` refuses a second operation under the same name."""

    def __init__(self) -> None:
        self._ops: dict[str, ServiceOperation] = {}

    def register(self, op: ServiceOperation) -> ServiceOperation:
        name = op.spec.name
        if name in self._ops:
            raise EngineError(f"service operation '{name}' is already registered")
        self._ops[name] = op
        return op

    def get(self, name: str) -> ServiceOperation | None:
        return self._ops.get(name)

    def specs(self) -> list[OperationSpec]:
        """Every operation's spec, sorted by name (for the editor's palette)."""
        return [self._ops[n].spec for n in sorted(self._ops)]

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ops))

    def check_params(self, config: ServiceTaskConfig) -> list[str]:
        """Problems with a service task's parameters (unknown, missing, ill-typed literals)."""
        op = self._ops.get(config.operation)
        if op is None:
            known = ", ".join(sorted(self._ops)) or "none registered"
            return [f"unknown operation '{config.operation}' (known: {known})"]
        specs = {p.name: p for p in op.spec.params}
        problems = []
        given = {p.name for p in config.params}
        for p in config.params:
            spec = specs.get(p.name)
            if spec is None:
                problems.append(f"operation {config.operation} has no parameter '{p.name}'")
            elif p.value is not None:
                try:
                    literal(spec, p.value)
                except ValueError as exc:
                    problems.append(f"parameter '{p.name}': {exc}")
                    continue
                # An operation may check a literal further (``check_param(name, value)`` →
                # a problem or None), e.g. a URL that it would refuse to call.
                check = getattr(op, "check_param", None)
                problem = check(p.name, p.value) if check is not None else None
                if problem:
                    problems.append(f"parameter '{p.name}': {problem}")
        for name, spec in specs.items():
            if spec.required and name not in given:
                problems.append(f"operation {config.operation} needs parameter '{name}'")
        return problems


def literal(spec: ParamSpec, text: str) -> Any:
    """A literal parameter from the XML as the JSON value its ``ParamSpec.type`` asks for."""
    t = spec.type
    if spec.choices and text not in spec.choices:
        raise ValueError(f"'{text}' is not one of {', '.join(spec.choices)}")
    if t == "integer":
        try:
            return parse_int(text, signed=True)
        except NumberError:
            raise ValueError(f"'{text}' is not an integer") from None
    if t == "decimal":
        try:
            return format(parse_decimal(text), "f")
        except NumberError:
            raise ValueError(f"'{text}' is not a decimal number") from None
    if t == "boolean":
        if text.strip().lower() not in ("true", "false"):
            raise ValueError(f"'{text}' is not true or false")
        return text.strip().lower() == "true"
    if t == "duration":
        parse_duration(text)
        return text.strip()
    if t == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("value is not valid JSON") from None
    if not text.strip() and spec.required:
        raise ValueError("value is empty")
    return text  # string, user, role, department, stage: resolved by the operation itself
