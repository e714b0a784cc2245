"""Migration 0026_imports2 gives the leads already in the database their dedup keys (an
import matches leads by phone / e-mail from now on) and can be undone."""
from __future__ import annotations

from sqlalchemy import insert, inspect, select, text

from crm_models.dedup import DedupKey
from crm_models.entities import Lead
from crm_models.org import User
from tests.test_migration_candidates import conn, migrate  # noqa: F401  (fixture)

BEFORE, AFTER = "0017_invoices2", "0026_imports2"


def test_existing_leads_get_their_keys_and_the_step_is_undone(conn) -> None:  # noqa: F811
    migrate(conn, BEFORE)
    conn.execute(insert(User.__table__).values(id=1, email="m@x.local", full_name="M"))
    conn.execute(insert(Lead.__table__).values(
        id=1, title="Заявка", responsible_id=1, phones=[{"value": "8 (916) 555-01-02", "type": "work"}],
        emails=[{"value": "Olga@Vector.Example", "type": "work"}]))
    conn.execute(insert(Lead.__table__).values(id=2, title="Без контактов", responsible_id=1))
    conn.commit()
    migrate(conn, AFTER)
    keys = set(conn.execute(select(DedupKey.entity_id, DedupKey.kind, DedupKey.value)
                            .where(DedupKey.entity_type == "lead")))
    assert keys == {(1, "phone", "+79165550102"), (1, "email", "olga@vector.example")}
    assert {"stock", "properties"} <= {c["name"] for c in inspect(conn).get_columns("product")}
    migrate(conn, BEFORE, down=True)
    assert conn.execute(text("SELECT count(*) FROM dedup_key WHERE entity_type = 'lead'")
                        ).scalar() == 0
    assert "stock" not in {c["name"] for c in inspect(conn).get_columns("product")}
