"""Issue 13, the process editor's server side: a condition comparing a record field with a value
of the wrong type is refused on validate, deploy and dry run (on that flow, in the user's
language); a drawing without an end is not "valid"; the dry run names the person a rule makes
responsible; a new process may be named without a key; the key-client template says what it
does."""
from __future__ import annotations

import re

from automation.condition_types import CrmConditionTypes
from automation.process_templates import TEMPLATES, key_from_name
from tests.factories import make_company, make_deal

from .api_support import api_for
from .editor_support import HEAD, approval

RU = {"Accept-Language": "ru"}


def test_a_company_compared_with_its_name_is_refused_on_that_flow_in_russian(app, db, org):
    admin = admin_ru = api_for(app, db, org.admin)
    wrong = approval(condition="deal.company_id == 'ООО «Вектор»'")
    r = admin_ru.post("/api/v1/editor/validate", {"bpmn_xml": wrong}, headers=RU)
    body = r.get_json()
    assert r.status_code == 200 and body["valid"] is False
    [error] = body["errors"]
    assert error["element_id"] == "Flow_Big"
    assert "«Компания»" in error["message"] and "'ООО «Вектор»'" in error["message"]
    assert "номер записи" in error["message"]  # the catalog's Russian, not the msgid
    # deploy refuses it the same way
    r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": wrong})
    assert r.status_code == 422
    assert [e["element_id"] for e in r.get_json()["error"]["errors"]] == ["Flow_Big"]
    # and so does the dry run, before running anything
    r = admin.post("/api/v1/editor/dry-run", {"bpmn_xml": wrong, "entity_type": "deal",
                                              "values": {"title": "x"}})
    assert r.status_code == 200 and r.get_json()["errors"][0]["element_id"] == "Flow_Big"
    # the id the record picker writes is fine
    company = make_company(db, org.m1, title="ООО «Вектор»")
    db.commit()
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": approval(
        condition=f"deal.company_id == {company.id}")})
    assert r.get_json() == {"valid": True, "errors": []}


def test_condition_types_cover_numbers_text_lists_and_leave_the_rest_alone():
    check = CrmConditionTypes().check  # no translation: English
    assert "«Company» holds a record id" in check("deal.company_id == 'ООО «Вектор»'")[0]
    assert check("deal.amount > '500'") and check("'500' < deal.amount")
    assert check("deal.title == 3") and check("deal.company_id in [1, 'x']")
    assert check("deal.opened == 'yes'")
    for fine in ("deal.amount > 500", "deal.company_id == 5", "deal.amount > threshold",
                 "'VIP' in deal.title", "deal.company is not None and deal.company.title == k",
                 "deal.close_date > '2026-01-01'", "lead.company_title == key_client",
                 "deal.amount >", "deal.company_id is None", "event.type == 'deal.created'"):
        assert check(fine) == [], fine


def test_a_drawing_with_only_a_start_event_is_not_valid(app, db, org):
    admin = api_for(app, db, org.admin)
    start_only = (HEAD + '<bpmn:process id="start_only" isExecutable="true">'
                  '<bpmn:startEvent id="Start_1"/></bpmn:process></bpmn:definitions>')
    r = admin.post("/api/v1/editor/validate", {"bpmn_xml": start_only})
    assert r.get_json()["valid"] is False
    messages = [e["message"] for e in r.get_json()["errors"]]
    assert "в процессе нет конечного события" in messages, messages
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": start_only}).status_code == 422


ASSIGN_HEAD = (HEAD + '<bpmn:message id="Msg" name="deal.created"/>'
               '<bpmn:process id="to_head" isExecutable="true">'
               '<bpmn:startEvent id="Start_1"><bpmn:messageEventDefinition messageRef="Msg"/>'
               '</bpmn:startEvent>'
               '<bpmn:serviceTask id="Assign" name="To the head" '
               'marshrut:operation="crm.assign_responsible"><bpmn:extensionElements>'
               '<marshrut:parameter name="department_head" value="Sales"/>'
               '</bpmn:extensionElements></bpmn:serviceTask><bpmn:endEvent id="End_1"/>'
               '<bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Assign"/>'
               '<bpmn:sequenceFlow id="F2" sourceRef="Assign" targetRef="End_1"/>'
               '</bpmn:process></bpmn:definitions>')


def test_the_dry_run_names_who_a_rule_makes_responsible(app, db, org):
    admin = api_for(app, db, org.admin)
    deal = make_deal(db, org.m1, title="Поставка")
    db.commit()
    r = admin.post("/api/v1/editor/dry-run", {"bpmn_xml": ASSIGN_HEAD, "entity_type": "deal",
                                              "entity_id": deal.id})
    [call] = r.get_json()["service_calls"]
    assert call["assignee"]["full_name"] == "Head of Sales"
    assert call["params"] == {"department_head": "Sales"}


def test_a_new_process_named_without_a_key_gets_one_from_its_name(app, db, org, client, auth):
    assert key_from_name("Ключевой клиент «Вектор»", lambda k: False) == "klyuchevoy_klient_vektor"
    assert key_from_name("Ключевой клиент", lambda k: k == "klyuchevoy_klient") == "klyuchevoy_klient_2"
    assert key_from_name("123", lambda k: False) == "p_123"
    assert key_from_name("«»", lambda k: False) == "process"
    auth.login("admin@test.local")
    html = client.get("/processes/").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    for expected in ("klyuchevoy_klient", "klyuchevoy_klient_2"):
        r = client.post("/processes/new", data={"csrf_token": csrf, "template": "blank",
                                                "key": "", "name": "Ключевой клиент"})
        assert r.status_code == 302 and r.headers["Location"].endswith(f"/processes/{expected}/edit")


def test_the_key_client_template_says_it_routes_to_the_head_of_sales():
    description = TEMPLATES["key_client_routing"].description
    assert "head of Sales" in description and "account manager" not in description


def test_the_version_diff_names_the_threshold_by_its_label_and_summarises_layout(
        app, db, org, client, auth):
    from automation.seed import PROCESSES_DIR

    admin = api_for(app, db, org.admin)
    v1 = (PROCESSES_DIR / "large_deal_routing.bpmn").read_text("utf-8").replace(
        'id="large_deal_routing"', 'id="big_rule"').replace(
        'bpmnElement="large_deal_routing"', 'bpmnElement="big_rule"')
    v2 = v1.replace('value="1000000" label=', 'value="2000000" label=')
    moved = re.sub(r'(<bpmndi:BPMNShape id="[^"]+"[^>]*>\s*<dc:Bounds x=")(\d+)',
                   lambda m: m.group(1) + str(int(m.group(2)) + 40), v2, count=1)
    for xml in (v1, v2, moved):
        r = admin.post("/api/v1/editor/deploy", {"bpmn_xml": xml})
        assert r.status_code == 201, r.get_json()
    auth.login("admin@test.local")
    html = client.get("/processes/big_rule/compare?from=1&to=2").get_data(as_text=True)
    assert re.search(r"Порог суммы сделки, ₽: <del>1\u202f000\u202f000</del> → "
                     r"<ins>2\u202f000\u202f000</ins>", html), html[html.find('id="diff"'):][:800]
    table = html[html.find('id="diff"'):html.find("</table>")]
    assert "xmlns" not in table and "<code" in table
    html = client.get("/processes/big_rule/compare?from=2&to=3").get_data(as_text=True)
    assert 'data-test="no-behaviour-change"' in html
    assert "Только раскладка: 1 элемент перемещён" in html


def test_operations_are_listed_in_the_users_language_with_labelled_parameters(app, db, org):
    admin = api_for(app, db, org.admin)
    items = {o["name"]: o for o in admin.get("/api/v1/service-operations",
                                             headers=RU).get_json()["items"]}
    assign = items["crm.assign_responsible"]
    assert assign["title"] == "Назначить ответственного"
    assert "ровно один" in assign["description"]
    params = {p["name"]: p for p in assign["params"]}
    assert params["department_head"]["label"] == "Руководитель отдела"
    assert params["department_head"]["description"] == "руководитель этого отдела"
    for op in items.values():  # nothing left in English
        assert not re.search(r"\b(the|a|of|to)\b", op["title"] + op["description"]), op["name"]
