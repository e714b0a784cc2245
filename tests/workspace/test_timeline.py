"""A record's one timeline, and lead conversion routing the new deal like any other."""
from __future__ import annotations

import re

from sqlalchemy import select

from automation.models import Notification
from automation.timeline import record_timeline
from crm_models.entities import Deal, Lead
from crm_models.services import add_activity, add_comment, update_deal
from engine.store import ProcessTask

from ..factories import actor, make_deal
from .support import deploy, task_process


def test_the_timeline_merges_changes_comments_activities_tasks_and_process_history(
        app, db, org, engine, pages):
    deploy(db, engine, task_process(name="Deal review"))
    deal = make_deal(db, org.m1, title="Timeline deal")
    db.commit()
    m1 = actor(db, org.m1)
    update_deal(db, m1, deal.id, amount="1200")
    add_comment(db, m1, entity_type="deal", entity_id=deal.id, text="Called, no answer")
    add_activity(db, m1, entity_type="deal", entity_id=deal.id, type="call", subject="Call again")
    db.commit()
    [task] = db.scalars(select(ProcessTask)).all()
    engine.complete(db, task.id, org.m1.id, {"note": "fine", "decision": "reject"})
    db.commit()
    kinds = [i.kind for i in record_timeline(db, "deal", deal.id)]
    assert kinds[0] == "process" and kinds[-1] == "change"  # finished … created
    for kind in ("change", "comment", "activity", "task", "task_done", "process"):
        assert kind in kinds
    # Comments and new activities appear once, not also as audit entries.
    assert kinds.count("comment") == 1 and kinds.count("activity") == 1
    html = pages.as_("m1@test.local").get(f"/deals/{deal.id}").get_data(as_text=True)
    timeline = html.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert "Задача «Review the deal» назначена: Manager One — процесс «Deal review», версия 1" in timeline
    pages.post("m1@test.local", "/locale", {"locale": "en"})
    html = pages.as_("m1@test.local").get(f"/deals/{deal.id}").get_data(as_text=True)
    timeline = html.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert "Task “Review the deal” routed to Manager One by process “Deal review”, version 1" in timeline
    assert "Called, no answer" in timeline and "Call again" in timeline
    assert "Reject" in timeline  # the decision, by its label
    assert 'data-kind="task_done"' in timeline and re.search(r"1\W?200[.,]00", timeline)


def test_timeline_names_the_process_that_changed_a_field(app, db, org, engine, demo):
    deal = make_deal(db, demo.m1, title="Крупная сделка", amount="5000000")
    db.commit()  # large_deal_routing makes the corporate manager responsible
    items = record_timeline(db, "deal", deal.id)
    changed = [i for i in items if i.kind == "change" and i.process is not None]
    assert changed and changed[0].process.key == "large_deal_routing"
    assert changed[0].process.name == "Маршрутизация крупных сделок" and changed[0].process.version == 1
    routed = [i for i in items if i.kind == "task"]
    assert routed and routed[0].data["assignee_id"] == demo.corporate.id


def test_converting_a_lead_routes_the_new_deal_like_any_other(app, db, engine, demo, pages):
    lead = db.scalars(select(Lead).where(Lead.title == "E-mail: запрос КП")).one()
    preview = pages.as_("head@demo.local").get(f"/leads/{lead.id}/convert")
    assert preview.status_code == 200 and "2" in preview.get_data(as_text=True)
    r = pages.post("head@demo.local", f"/leads/{lead.id}/convert", {"title": lead.title})
    assert r.status_code == 302
    db.rollback()
    deal = db.scalars(select(Deal).where(Deal.lead_id == lead.id)).one()
    assert r.headers["Location"].endswith(f"/deals/{deal.id}")
    # 2 300 000 ₽ is above the threshold: the large-deal rule took it.
    assert deal.responsible_id == demo.corporate.id
    [task] = db.scalars(select(ProcessTask).where(ProcessTask.entity_id == deal.id,
                                                  ProcessTask.entity_type == "deal")).all()
    assert task.assignee_id == demo.corporate.id and task.definition_key == "large_deal_routing"
    kinds = set(db.scalars(select(Notification.kind).where(
        Notification.user_id == demo.corporate.id, Notification.task_id == task.id)))
    assert kinds == {"task"}
    card = pages.as_("head@demo.local").get(f"/deals/{deal.id}").get_data(as_text=True)
    timeline = card.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert "процесс «Маршрутизация крупных сделок», версия 1" in timeline
    assert "Ольга Корпоративная" in timeline


def test_a_manager_whose_converted_deal_is_routed_away_lands_on_the_lead(app, db, engine, demo,
                                                                      pages):
    lead = db.scalars(select(Lead).where(Lead.title == "E-mail: запрос КП")).one()
    assert lead.responsible_id == demo.m1.id
    r = pages.post("manager1@demo.local", f"/leads/{lead.id}/convert", {"title": lead.title})
    # The deal went to the corporate manager; Manager One (own rights) may not open it.
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/leads/{lead.id}")
    db.rollback()
    deal = db.scalars(select(Deal).where(Deal.lead_id == lead.id)).one()
    assert deal.responsible_id == demo.corporate.id
    page = pages.as_("manager1@demo.local").get(r.headers["Location"])
    assert page.status_code == 200 and "сделка передана коллеге" in page.get_data(as_text=True)
