"""Engine fixtures: an ``Engine`` wired with in-memory fakes, on the migrated test database."""
from __future__ import annotations

from typing import Any

import pytest

from engine.runtime import Engine
from engine.services import ServiceRegistry

from .support import FakeAssigner, FakeClock, FakeOperation, assign_op


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def assigner() -> FakeAssigner:
    return FakeAssigner()


@pytest.fixture()
def assign() -> FakeOperation:
    return assign_op()


@pytest.fixture()
def registry(assign: FakeOperation) -> ServiceRegistry:
    reg = ServiceRegistry()
    reg.register(assign)
    return reg


@pytest.fixture()
def engine(registry: ServiceRegistry, assigner: FakeAssigner, clock: FakeClock) -> Engine:
    return Engine(registry=registry, assigner=assigner, clock=clock)


@pytest.fixture()
def sessions(app: Any) -> Any:
    """A factory of extra sessions (for concurrency tests); all are closed afterwards."""
    made = []

    def make() -> Any:
        s = app.extensions["db_sessionmaker"]()
        made.append(s)
        return s

    yield make
    for s in made:
        s.rollback()
        s.close()
