"""Engine fixtures: an ``Engine`` wired with in-memory fakes, on the migrated test database."""
from __future__ import annotations

from typing import Any

import pytest

from crm_models.db import make_sessionmaker
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
def engine_sessions(app: Any) -> Any:
    """Sessions on the test database without the app's listeners (outbox dispatch, task
    notifications): engine tests run the engine alone, with the fake org chart's user ids."""
    return make_sessionmaker(app.extensions["db_engine"])


@pytest.fixture()
def db(engine_sessions: Any) -> Any:
    session = engine_sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture()
def sessions(engine_sessions: Any) -> Any:
    """A factory of extra sessions (for concurrency tests); all are closed afterwards."""
    made = []

    def make() -> Any:
        s = engine_sessions()
        made.append(s)
        return s

    yield make
    for s in made:
        s.rollback()
        s.close()
