"""The automation tests' demo org (shipped processes deployed), for routing of imports, and
the 1C exchange's file folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.automation.conftest import demo, engine  # noqa: F401  (fixtures)


@pytest.fixture()
def exchange_dir(app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(app.config, "IMPORT_DIR", str(tmp_path))
    monkeypatch.setitem(app.config, "EXCHANGE_1C_PRICE_TYPE", "Розничная")
    return tmp_path
