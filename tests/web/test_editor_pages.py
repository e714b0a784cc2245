"""The process pages without a browser: rights on every write, 404s, import errors, export."""
from __future__ import annotations

import io
import re

from sqlalchemy import select

from automation.drafts import ProcessDraft
from engine.store import ProcessDefinition

from .api_support import api_for
from .editor_support import approval


def csrf(client, path="/processes/"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def deploy(app, db, org, **kw):
    r = api_for(app, db, org.admin).post("/api/v1/editor/deploy", {"bpmn_xml": approval(**kw)})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_manager_sees_the_pages_but_every_write_is_refused(app, db, org, client, auth):
    deploy(app, db, org)
    auth.login("m1@test.local")
    token = csrf(client)
    for path in ("/processes/", "/processes/big_deals", "/processes/big_deals/edit",
                 "/processes/big_deals/versions/1", "/processes/big_deals/compare"):
        assert client.get(path).status_code == 200, path
    html = client.get("/processes/big_deals").get_data(as_text=True)
    assert "/deactivate" not in html and "Edit from here" not in html
    for path, data in (("/processes/big_deals/versions/1/deactivate", {}),
                       ("/processes/new", {"template": "blank", "key": "x", "name": "X"}),
                       ("/processes/import", {"file": (io.BytesIO(approval().encode()), "a.bpmn")}),
                       ("/processes/big_deals/draft/discard", {})):
        r = client.post(path, data={"csrf_token": token, **data})
        assert r.status_code == 403, path
    db.rollback()
    assert db.scalar(select(ProcessDefinition.active)) is True
    assert db.scalars(select(ProcessDraft)).all() == []


def test_missing_processes_versions_and_instances_are_404(app, db, org, client, auth):
    deploy(app, db, org)
    auth.login("admin@test.local")
    for path in ("/processes/nope", "/processes/nope/edit", "/processes/big_deals/versions/9",
                 "/processes/big_deals/edit?version=x", "/processes/big_deals/compare?to=7",
                 "/processes/instances/12345", "/processes/big_deals/versions/9/export.bpmn"):
        assert client.get(path).status_code == 404, path


def test_activate_deactivate_export_and_discard_as_a_designer(app, db, org, client, auth):
    deploy(app, db, org)
    deploy(app, db, org, condition="deal.amount > 1")
    api_for(app, db, org.admin).put("/api/v1/editor/drafts", {"bpmn_xml": approval()})
    auth.login("admin@test.local")
    token = csrf(client)
    r = client.post("/processes/big_deals/versions/1/activate", data={"csrf_token": token})
    assert r.status_code == 302
    db.rollback()
    assert [d.active for d in db.scalars(select(ProcessDefinition).order_by(
        ProcessDefinition.version))] == [True, False]
    r = client.get("/processes/big_deals/versions/2/export.bpmn")
    assert r.headers["Content-Disposition"] == 'attachment; filename="big_deals-v2.bpmn"'
    assert "deal.amount &gt; 1" in r.get_data(as_text=True)
    assert client.post("/processes/big_deals/draft/discard",
                       data={"csrf_token": token}).status_code == 302
    db.rollback()
    assert db.scalars(select(ProcessDraft)).all() == []
    assert client.post("/processes/big_deals/draft/discard",
                       data={"csrf_token": token}).status_code == 404


def test_import_refuses_what_is_not_a_process_and_decodes_latin1(app, db, org, client, auth):
    auth.login("admin@test.local")
    token = csrf(client)
    for content, message in ((b"", "flash-error"), (b"<not xml", "well-formed"),
                             (b"<x/>", "bpmn:definitions")):
        r = client.post("/processes/import", data={"csrf_token": token, "file": (
            io.BytesIO(content), "a.bpmn")}, follow_redirects=True)
        html = r.get_data(as_text=True)
        assert "flash-error" in html and message in html, message
    latin = approval(key="cafe", name="Café").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    r = client.post("/processes/import", data={"csrf_token": token, "file": (
        io.BytesIO(latin.encode("latin-1")), "cafe.bpmn")})
    assert r.status_code == 302 and r.headers["Location"].endswith("/processes/cafe/edit")
    db.rollback()
    draft = db.scalars(select(ProcessDraft)).one()
    assert draft.name == "Café" and 'encoding="UTF-8"' in draft.bpmn_xml


def test_new_process_form_errors_are_shown_on_the_list(app, db, org, client, auth):
    auth.login("admin@test.local")
    token = csrf(client)
    r = client.post("/processes/new", data={"csrf_token": token, "template": "blank",
                                            "key": "bad key", "name": "X"})
    assert r.status_code == 422 and "key" in r.get_data(as_text=True)
    r = client.post("/processes/new", data={"csrf_token": token, "template": "blank",
                                            "key": "fresh", "name": "Fresh"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/processes/fresh/edit")
    assert "fresh" in client.get("/processes/").get_data(as_text=True)
