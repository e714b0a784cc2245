"""E-mail templates written by admins: Russian and English texts with placeholders checked
when saved (a wrong one is a field error naming it), offered on the compose page and by the
API, filled in from the record."""
from __future__ import annotations

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from integrations.mail_models import EmailTemplate
from tests.automation.support import api_as

from .support import add_mailbox

GOOD = {"code": "price-offer", "title": "Коммерческое предложение",
        "subject_ru": "Предложение по сделке «{{ deal.title }}»",
        "body_ru": "Здравствуйте, {{ contact.name }}!\nСумма: {{ deal.amount }}.\n{{ user.name }}",
        "subject_en": "Offer: {{ deal.title }}",
        "body_en": "Hello {{contact.name}},\nthe amount is {{ deal.amount }}."}


def _deal(db):
    return db.scalars(select(Deal).where(Deal.title == "Поставка станков")).one()


def test_admins_write_templates_and_managers_use_them(app, db, demo, mail, smtp, auth,
                                                      client):
    admin = api_as(app, db, "admin@demo.local")
    r = admin.post("/api/v1/email-templates", json=GOOD)
    assert r.status_code == 201, r.get_json()
    tid = r.get_json()["id"]
    [ev] = db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "email_template.saved")).all()
    assert ev.payload["template"]["code"] == "price-offer"
    # A manager may not write templates, only use them.
    manager = api_as(app, db, "head@demo.local")
    assert manager.post("/api/v1/email-templates",
                        json={**GOOD, "code": "other"}).status_code == 403
    names = [t["name"] for t in manager.get("/api/v1/email-templates").get_json()["items"]]
    assert "price-offer" in names and "follow_up" in names
    deal = _deal(db)
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local",
                          email="head@demo.local")
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "deal",
                                         "entity_id": deal.id, "template": "price-offer",
                                         "lang": "en", "to": ["petrov@vector.example"]})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["subject"] == "Offer: Поставка станков"
    body = r.get_json()["body"]
    assert body.startswith("Hello ") and "{{" not in body and f"{deal.amount}" in body, body
    # The compose page offers it and fills it in, in Russian or English.
    db.rollback()
    auth.login("head@demo.local")
    page = client.get(f"/mail/compose/deal/{deal.id}").get_data(as_text=True)
    assert '<option value="price-offer"' in page and "Коммерческое предложение" in page
    page = client.get(f"/mail/compose/deal/{deal.id}?template=price-offer&lang=ru")
    html = page.get_data(as_text=True)
    assert "Предложение по сделке «Поставка станков»" in html and "{{" not in html
    page = client.get(f"/mail/compose/deal/{deal.id}?template=price-offer&lang=en")
    assert "Offer: Поставка станков" in page.get_data(as_text=True)
    # Changed by an admin: the next e-mail uses the new text; deleted: no longer offered.
    assert admin.call("PATCH", f"/api/v1/email-templates/{tid}",
                      json={"subject_ru": "КП: {{ deal.title }}"}).status_code == 200
    html = client.get(f"/mail/compose/deal/{deal.id}?template=price-offer&lang=ru") \
        .get_data(as_text=True)
    assert "КП: Поставка станков" in html
    assert admin.call("DELETE", f"/api/v1/email-templates/{tid}").status_code == 204
    page = client.get(f"/mail/compose/deal/{deal.id}").get_data(as_text=True)
    assert "price-offer" not in page


def test_a_wrong_placeholder_is_a_field_error_naming_it(app, db, demo):
    admin = api_as(app, db, "admin@demo.local")
    cases = {
        "body_ru": ("Сумма {{ deal.amout }}", 'deal has no field "amout"'),
        "subject_en": ("Hi {{ client.name }}", 'unknown record "client"'),
        "body_en": ("{{ deal.title | upper }}", "is not a placeholder"),
        "subject_ru": ("Сделка {{ deal.title", "unclosed"),
    }
    for field, (text, expected) in cases.items():
        r = admin.post("/api/v1/email-templates", json={**GOOD, field: text})
        assert r.status_code == 422, (field, r.get_json())
        fields = r.get_json()["error"]["fields"]
        assert list(fields) == [field] and expected in fields[field], fields
        if "{{" in text and "unclosed" not in expected:
            assert text[text.index("{{"):text.index("}}") + 2] in fields[field]
    r = admin.post("/api/v1/email-templates", json={**GOOD, "code": "follow_up"})
    assert "built-in" in r.get_json()["error"]["fields"]["code"]
    r = admin.post("/api/v1/email-templates", json={**GOOD, "code": "Плохой код"})
    assert r.get_json()["error"]["fields"]["code"].startswith("letters")
    r = admin.post("/api/v1/email-templates", json={"code": "x", "title": "X"})
    assert "subject_ru" in r.get_json()["error"]["fields"]
    assert admin.post("/api/v1/email-templates", json=GOOD).status_code == 201
    r = admin.post("/api/v1/email-templates", json=GOOD)
    assert r.get_json()["error"]["fields"] == {"code": "a template price-offer exists already"}
    db.rollback()
    assert len(db.scalars(select(EmailTemplate)).all()) == 1


def test_template_pages_in_russian(app, db, demo, auth, client):
    auth.login("admin@demo.local")
    html = client.get("/mail/templates").get_data(as_text=True)
    assert "Шаблоны писем" in html
    token = auth.csrf_token("/mail/templates/new")
    r = client.post("/mail/templates/new", data={**GOOD, "body_ru": "{{ deal.amout }}",
                                                 "csrf_token": token})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "{{ deal.amout }}: у deal нет поля «amout»" in html, html[-3000:]
    r = client.post("/mail/templates/new", data={**GOOD, "csrf_token": token})
    assert r.status_code == 302
    html = client.get("/mail/templates").get_data(as_text=True)
    assert "Коммерческое предложение" in html
    auth.login("manager1@demo.local")
    assert client.get("/mail/templates").status_code == 403


def test_unknown_keys_and_wrong_types_are_field_errors(app, db, demo):
    admin = api_as(app, db, "admin@demo.local")
    r = admin.post("/api/v1/email-templates", json={**GOOD, "template_id": 5})
    assert r.status_code == 422 and "template_id" in str(r.get_json())
    r = admin.post("/api/v1/email-templates", json={**GOOD, "body_en": 12})
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {"body_en": "must be text"}
    tid = admin.post("/api/v1/email-templates", json=GOOD).get_json()["id"]
    r = admin.call("PATCH", f"/api/v1/email-templates/{tid}", json={"template_id": 1})
    assert r.status_code == 422
    assert admin.call("PATCH", "/api/v1/email-templates/999999", json={}).status_code == 404
