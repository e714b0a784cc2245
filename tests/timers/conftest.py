"""Fixtures for the app-level timer tests: the app's engine and the demo with the shipped
processes (the same fixtures as the bridge tests), a runner on the app's sessions."""
from __future__ import annotations

from typing import Any

import pytest

from engine.scheduler import TimerRunner
from tests.automation.conftest import Demo, demo, dispatcher, engine  # noqa: F401


@pytest.fixture()
def runner(app: Any, engine: Any) -> TimerRunner:  # noqa: F811
    return TimerRunner(engine, app.extensions["db_sessionmaker"], worker_id="test-runner")


__all__ = ["Demo"]
