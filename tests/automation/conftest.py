"""Fixtures for the bridge: the app's engine and dispatcher, the demo org with the shipped
processes deployed (what ``flask init-db --demo`` sets up)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.dispatcher import Dispatcher
from automation.seed import deploy_shipped
from crm_models.demo import load_demo
from crm_models.org import User
from engine.runtime import Engine

from .support import user_by_email


@pytest.fixture()
def engine(app: Any) -> Engine:
    return app.extensions["engine"]


@pytest.fixture()
def dispatcher(app: Any) -> Dispatcher:
    return app.extensions["dispatcher"]


@dataclass
class Demo:
    admin: User
    head: User
    corporate: User
    m1: User
    m2: User
    vector_id: int


@pytest.fixture()
def demo(app: Any, db: Session, engine: Engine) -> Demo:
    """The demo org chart and data, then the shipped processes, deployed and active."""
    from crm_models.entities import Company

    load_demo(db)
    db.commit()  # the demo's own events are dispatched with no process listening
    deploy_shipped(db, engine)
    db.commit()
    vector = db.scalars(select(Company).where(Company.title == "ООО «Вектор»")).one()
    return Demo(*(user_by_email(db, f"{n}@demo.local")
                  for n in ("admin", "head", "corporate", "manager1", "manager2")),
                vector_id=vector.id)
