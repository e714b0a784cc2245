"""A runaway process in the app: the configured data limit makes it an incident, and the
instance viewer shows its data cut down instead of a page the size of the data."""
from __future__ import annotations

from engine.ports import StartRequest
from engine.store import Status
from tests.engine.support import bpmn


def test_runaway_instance_is_an_incident_and_its_page_stays_small(app, db, org, client, auth):
    engine = app.extensions["engine"]
    assert engine.data_limit == app.config["INSTANCE_DATA_LIMIT_BYTES"] == 1024 * 1024
    d = engine.deploy(db, bpmn("growing_data.bpmn"))
    inst = engine.start(db, d, StartRequest({}, None, None))
    db.commit()
    assert inst.status == Status.INCIDENT and inst.incident_element_id == "Grow"
    assert "past the limit of 1048576 bytes" in inst.incident_message
    data_bytes = len(str(engine.instance_data(db, inst.id)))
    assert data_bytes > 1024 * 1024

    auth.login(org.admin.email)
    r = client.get(f"/processes/instances/{inst.id}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "past the limit of 1048576 bytes" in page and "Grow" in page
    assert len(page) < 200_000, len(page)  # the data is cut down, not rendered whole
    assert "more items" in page

    r = client.get(f"/api/v1/process-instances/{inst.id}")
    assert r.status_code == 200 and len(r.get_data()) < 100_000
    assert r.get_json()["incident"]["element_id"] == "Grow"
