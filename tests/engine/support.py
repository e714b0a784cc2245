"""In-memory fakes for the engine's ports: an org chart assigner, service operations, a clock."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import ServiceCallError
from engine.ports import (
    Assignment,
    AssignmentSpec,
    OperationSpec,
    ParamSpec,
    ProcessContext,
)
from engine.runtime import Engine
from engine.scheduler import TimerRunner

DATA = Path(__file__).resolve().parent.parent / "data"
BPMN = DATA / "bpmn"


def bpmn(name: str) -> str:
    return (BPMN / name).read_text(encoding="utf-8")


class FakeClock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)


class FakeAssigner:
    """A tiny org chart: users by e-mail, role members, department heads, deputies."""

    def __init__(self) -> None:
        self.users = {"head@test.local": 10, "m1@test.local": 11, "m2@test.local": 12,
                      "corporate@demo.local": 13}
        self.roles = {"sales_manager": [11, 12], "corporate_head": [13]}
        self.heads = {"Sales": 10, "Corporate": 13}
        self.away: set[int] = set()
        self.deputies = {10: 13}
        self.calls: list[AssignmentSpec] = []

    def _present(self, user: int, spec: AssignmentSpec) -> tuple[int | None, str]:
        if user not in self.away:
            return user, ""
        if spec.out_of_office == "skip":
            return None, f"user {user} is away"
        deputy = self.deputies.get(user)
        return deputy, f"deputy of user {user} (out of office)"

    def resolve(self, session: Session, spec: AssignmentSpec, data: Mapping[str, Any],
                now: dt.datetime) -> Assignment:
        self.calls.append(spec)
        if spec.kind == "user":
            user = self.users.get(spec.target) or int(spec.target)
            who, note = self._present(user, spec)
            return Assignment(who, (), note)
        if spec.kind == "role":
            return Assignment(None, tuple(self.roles[spec.target]))
        if spec.kind == "department_head":
            who, note = self._present(self.heads[spec.target], spec)
            return Assignment(who, (), note)
        if spec.kind == "responsible":
            return Assignment(int(data["deal"]["responsible"]["id"]))
        raise LookupError(f"cannot resolve {spec.kind}")

    def validate(self, session: Session, spec: AssignmentSpec) -> str | None:
        if spec.kind == "role" and spec.target not in self.roles:
            return f"unknown role '{spec.target}'"
        if spec.kind == "department_head" and spec.target not in self.heads:
            return f"unknown department '{spec.target}'"
        if spec.kind == "user" and spec.target not in self.users and not spec.target.isdigit():
            return f"unknown user '{spec.target}'"
        return None


class FakeOperation:
    """A service operation that records its calls and fails the first ``fail_times`` calls."""

    def __init__(self, name: str, params: tuple[ParamSpec, ...] = (), *,
                 result: dict[str, Any] | None = None, fail_times: int = 0,
                 retryable: bool = True, error: Exception | None = None) -> None:
        self.spec = OperationSpec(name=name, title=name, params=params)
        self.result = result if result is not None else {}
        self.fail_times = fail_times
        self.retryable = retryable
        self.error = error
        self.calls: list[tuple[ProcessContext, dict[str, Any], dict[str, Any]]] = []
        self.write: Any = None  # optional callable(session, ctx) doing a DB write
        self.fail_if: Any = None  # optional callable(data) -> bool: fail for good

    def __call__(self, session: Session, ctx: ProcessContext, params: Mapping[str, Any],
                 data: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((ctx, dict(params), dict(data)))
        if self.write is not None:
            self.write(session, ctx)
        if self.fail_if is not None and self.fail_if(data):
            raise ServiceCallError("rejected", retryable=False)
        if len(self.calls) <= self.fail_times:
            if self.error is not None:
                raise self.error
            raise ServiceCallError(f"{self.spec.name} is down", retryable=self.retryable)
        return dict(self.result)


def assign_op(**kw: Any) -> FakeOperation:
    return FakeOperation("test.assign", (ParamSpec("user", "user"), ParamSpec("deal", "integer")),
                         result={"assigned": True}, **kw)


def deal(amount: str = "1500000.00", **extra: Any) -> dict[str, Any]:
    d = {"id": 7, "title": "Vector supply", "amount": amount,
         "company": {"id": 3, "title": "ООО «Вектор»"},
         "responsible": {"id": 11, "department": "Sales"}}
    d.update(extra)
    return {"deal": d}


def restarted(engine: Engine, db: Session, engine_sessions: Any) -> tuple[Engine, TimerRunner]:
    """Commit and go on with a brand-new engine and timer scheduler: the instance is restored
    from its row, the timers from the table."""
    db.commit()
    db.expire_all()
    fresh = Engine(registry=engine.registry, assigner=engine.assigner, clock=engine.clock)
    return fresh, TimerRunner(fresh, engine_sessions, worker_id="after-restart")


def fire_due(runner: TimerRunner, db: Session) -> Any:
    """Run the due timers as the scheduler would, between two commits; its report."""
    db.commit()
    report = runner.run_due()
    db.commit()
    db.expire_all()
    return report
