"""``flask backup`` and ``flask restore`` round-trip the database (both backends)."""
from __future__ import annotations

from sqlalchemy import func, select

from crm_models.entities import Deal

from .server import flask_cli


def test_backup_then_restore_brings_back_what_was_changed(app, db, tmp_path):
    url = app.config["DATABASE_URL"]
    flask_cli(url, "init-db", "--demo")
    titles = list(db.scalars(select(Deal.title).order_by(Deal.id)))
    assert titles
    db.rollback()
    flask_cli(url, "backup", str(tmp_path / "marshrut.backup"))
    db.execute(Deal.__table__.update().values(title="испорчено"))
    db.commit()
    db.close()  # restore needs the tables to itself: no transaction of ours stays open
    flask_cli(url, "restore", "--yes", str(tmp_path / "marshrut.backup"))
    assert list(db.scalars(select(Deal.title).order_by(Deal.id))) == titles
    assert db.scalar(select(func.count()).select_from(Deal)) == len(titles)
