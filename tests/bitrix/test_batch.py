"""``batch``: references between commands, the five result sections, halt, limits."""
from __future__ import annotations

from urllib.parse import quote_plus

from tests.factories import make_deal


def test_references_after_url_decoding(app, org, db, admin_hook, rest):
    deal = make_deal(db, org.admin, title="Referenced", amount="10")
    db.commit()
    # the way b24pysdk encodes commands: $, [ and ] arrive percent-encoded
    ref = quote_plus("$result[first][0][ID]")
    status, body = rest(admin_hook, "batch", {"halt": 0, "cmd": {
        "first": "crm.deal.list?" + quote_plus("select[0]") + "=ID&order%5BID%5D=ASC",
        "second": f"crm.deal.get?id={ref}",
        "me": "user.current",
        "text": "crm.deal.list?filter%5B%25TITLE%5D=" + quote_plus("$result[second][TITLE]"),
        "dept": "department.get?ID=$result[me][UF_DEPARTMENT][0]",
    }})
    assert status == 200, body
    r = body["result"]
    assert set(r) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert r["result"]["second"]["TITLE"] == "Referenced"
    assert r["result"]["text"][0]["ID"] == str(deal.id)
    assert r["result_total"] == {"first": 1, "text": 1}
    assert r["result_next"] == []  # PHP's empty array
    assert set(r["result_time"]) == {"first", "second", "me", "text"}
    # the admin has no department: the reference points at nothing
    assert r["result_error"]["dept"]["error"] == "INVALID_ARG_VALUE"
    assert "time" in body


def test_array_of_commands_and_halt(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "batch", {"halt": 1, "cmd": [
        "user.current", "crm.deal.get?id=424242", "user.current"]})
    assert status == 200
    r = body["result"]
    assert list(r["result"]) == ["0"] and list(r["result_error"]) == ["1"]
    assert r["result_error"]["1"]["error"] == ""
    status, body = rest(admin_hook, "batch", {"halt": "false", "cmd": [
        "user.current", "crm.deal.get?id=424242", "user.current"]})
    assert list(body["result"]["result"]) == ["0", "2"]


def test_form_encoded_batch(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "batch", form={
        "halt": "0", "cmd[a]": "crm.deal.add?fields[TITLE]=From form batch",
        "cmd[b]": "crm.deal.get?id=$result[a]"})
    assert status == 200, body
    assert body["result"]["result"]["b"]["TITLE"] == "From form batch"


def test_limits_and_nesting(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "batch", {"cmd": {f"c{i}": "user.current"
                                                      for i in range(51)}})
    assert (status, body["error"]) == (400, "ERROR_BATCH_LENGTH_EXCEEDED")
    status, body = rest(admin_hook, "batch", {"cmd": {f"c{i}": "user.current"
                                                      for i in range(50)}})
    assert status == 200 and len(body["result"]["result"]) == 50
    status, body = rest(admin_hook, "batch", {"cmd": {
        "inner": "batch?cmd[x]=user.current", "bad": "crm.deal.add?fields[TITLE=x",
        "nope": "no.such.method", "blank": "", "obj": {"x": 1}}})
    assert status == 200
    errors = body["result"]["result_error"]
    assert errors["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert errors["bad"]["error"] == "INVALID_REQUEST"
    assert errors["nope"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert errors["blank"]["error"] == "INVALID_REQUEST"
    assert errors["obj"]["error"] == "INVALID_REQUEST"
    assert body["result"]["result"] == []
    status, body = rest(admin_hook, "batch", {"cmd": "user.current"})
    assert (status, body["error"]) == (400, "INVALID_REQUEST")
    status, body = rest(admin_hook, "batch", {})
    assert status == 200 and body["result"]["result"] == []


def test_each_command_commits_on_its_own(app, org, db, admin_hook, rest):
    status, body = rest(admin_hook, "batch", {"cmd": {
        "ok": "crm.deal.add?fields[TITLE]=Kept", "bad": "crm.deal.add?fields[OPPORTUNITY]=x"}})
    assert "bad" in body["result"]["result_error"]
    status, body = rest(admin_hook, "crm.deal.list", {"select": ["TITLE"]})
    assert [d["TITLE"] for d in body["result"]] == ["Kept"]


def test_the_events_of_a_batch_are_dispatched_together_when_it_ends(app, org, admin_hook, rest,
                                                                    monkeypatch):
    from sqlalchemy import select

    from crm_models.activity import OutboxEvent

    dispatcher = app.extensions["dispatcher"]
    calls = []
    original = dispatcher.dispatch

    def dispatch(ids, *args, **kw):
        calls.append(sorted(ids))
        return original(ids, *args, **kw)

    monkeypatch.setattr(dispatcher, "dispatch", dispatch)
    status, body = rest(admin_hook, "batch", {"cmd": {
        f"d{i}": f"crm.deal.add?fields%5BTITLE%5D=Batch+{i}" for i in range(3)}})
    assert status == 200, body
    new = [int(body["result"]["result"][f"d{i}"]) for i in range(3)]
    with app.extensions["db_sessionmaker"]() as s:
        events = s.scalars(select(OutboxEvent).where(
            OutboxEvent.entity_id.in_(new), OutboxEvent.event_type == "deal.created")).all()
        assert len(events) == 3 and all(e.dispatched_at is not None for e in events)
        assert calls == [sorted(e.id for e in events)]  # one dispatch, at the end
