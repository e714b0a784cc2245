"""CRM service tests: cheaper password hashing, so each test's org chart builds fast.

The hash stays argon2 (``test_org`` checks the production parameters separately); only the
cost is lowered, which changes nothing the tests look at.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from crm_models.services import org as org_services

PRODUCTION_HASHER = org_services._hasher


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(org_services, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
