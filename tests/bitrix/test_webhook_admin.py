"""Creating and revoking webhooks (profile page, CLI), the outgoing-webhook admin page, and the
package boundary."""
from __future__ import annotations

import re
import subprocess
import sys

from sqlalchemy import select

from integrations.models import Delivery, EventHandler, IncomingWebhook
from integrations.webhooks import secret_hash

from .conftest import Hook


def test_profile_page_creates_shows_once_and_revokes(app, org, db, auth, client, rest):
    auth.login("m1@test.local")
    page = client.get("/profile/webhooks")
    # m1 speaks Russian (the default locale): the empty list says so in Russian.
    assert page.status_code == 200 and "Вебхуков пока нет" in page.get_data(as_text=True)
    token = auth.csrf_token("/profile/webhooks")
    r = client.post("/profile/webhooks", data={"csrf_token": token, "name": "Site form",
                                               "scopes": ["crm", "user"]})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    url = re.search(r'id="new-webhook-url">([^<]+)<', html).group(1)
    m = re.fullmatch(r"http://localhost/rest/(\d+)/([a-z0-9]+)/", url)
    assert m and int(m.group(1)) == org.m1.id
    hook = Hook(int(m.group(1)), m.group(2))
    assert rest(hook, "user.current")[1]["result"]["ID"] == str(org.m1.id)
    assert rest(hook, "department.get")[0] == 403  # not in its scopes
    row = db.scalars(select(IncomingWebhook)).one()
    assert row.secret_hash == secret_hash(hook.secret) and hook.secret not in html.replace(
        url, "")  # the secret appears only in the URL shown once
    assert row.scopes == ["crm", "user"]
    again = client.get("/profile/webhooks").get_data(as_text=True)
    assert "Site form" in again and hook.secret not in again
    r = client.post(f"/profile/webhooks/{row.id}/revoke",
                    data={"csrf_token": auth.csrf_token("/profile/webhooks")})
    assert r.status_code == 302
    assert rest(hook, "user.current")[0] == 401


def test_profile_form_errors_and_other_users_hooks(app, org, db, auth, client):
    auth.login("m1@test.local")
    token = auth.csrf_token("/profile/webhooks")
    r = client.post("/profile/webhooks", data={"csrf_token": token, "name": "",
                                               "scopes": ["crm", "root"]})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "is required" in html and "each scope must be one of" in html
    assert client.post("/profile/webhooks", data={"name": "x"}).status_code == 400  # no CSRF
    from integrations.webhooks import create_webhook
    from tests.factories import SYSTEM

    other, _secret = create_webhook(db, SYSTEM, user_id=org.m2.id, name="theirs")
    db.commit()
    r = client.post(f"/profile/webhooks/{other.id}/revoke", data={"csrf_token": token})
    assert r.status_code == 404
    db.rollback()
    db.expire_all()
    assert db.get(IncomingWebhook, other.id).revoked_at is None
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/profile/webhooks").status_code == 302  # to the login page


def test_cli_create_webhook_prints_a_working_url(app, org, rest):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-webhook", "M1@test.local", "--scopes", "crm,user"])
    assert result.exit_code == 0, result.output
    m = re.fullmatch(r"http://127\.0\.0\.1:5000/rest/(\d+)/([a-z0-9]+)/\n", result.output)
    assert m, result.output
    hook = Hook(int(m.group(1)), m.group(2))
    assert rest(hook, "user.current")[1]["result"]["EMAIL"] == "m1@test.local"
    bad = runner.invoke(args=["create-webhook", "nobody@test.local"])
    assert bad.exit_code != 0 and "No user" in bad.output
    bad = runner.invoke(args=["create-webhook", "m1@test.local", "--scopes", "crm,tasks"])
    assert bad.exit_code != 0 and "scope" in bad.output


def test_admin_page_registers_handlers_and_shows_the_log(app, org, db, auth, client,
                                                         allowed_receiver):
    receiver = allowed_receiver
    auth.login("m1@test.local")
    assert client.get("/admin/webhooks").status_code == 403
    auth.logout()
    auth.login("admin@test.local")
    token = auth.csrf_token("/admin/webhooks")
    r = client.post("/admin/webhooks", data={"csrf_token": token, "event": "ONCRMDEALADD",
                                             "url": receiver.url})
    assert r.status_code == 302
    r = client.post("/admin/webhooks", data={"csrf_token": token, "event": "ONCRMDEALADD",
                                             "url": "javascript:alert(1)"})
    assert r.status_code == 422 and "http(s) URL" in r.get_data(as_text=True)
    handler = db.scalars(select(EventHandler)).one()
    from tests.factories import make_deal

    deal = make_deal(db, org.admin)
    db.commit()
    app.extensions["bitrix_delivery"].run_once()
    assert receiver.posts[0]["data[FIELDS][ID]"] == str(deal.id)
    html = client.get("/admin/webhooks").get_data(as_text=True)
    assert handler.application_token in html and 'class="delivery-sent"' in html
    r = client.post(f"/admin/webhooks/{handler.id}/toggle", data={"csrf_token": token})
    assert r.status_code == 302
    db.rollback()  # a fresh snapshot: the page wrote through its own connection
    db.expire_all()
    assert db.get(EventHandler, handler.id).active is False
    delivery = db.scalars(select(Delivery)).one()
    r = client.post(f"/admin/webhooks/deliveries/{delivery.id}/retry",
                    data={"csrf_token": token})
    assert r.status_code == 302  # a sent delivery stays sent
    r = client.post(f"/admin/webhooks/{handler.id}/delete", data={"csrf_token": token})
    assert r.status_code == 302
    db.rollback()
    db.expire_all()
    assert db.scalars(select(EventHandler)).all() == []
    assert db.scalars(select(Delivery)).all() == []  # its log goes with it
    assert client.post("/admin/webhooks/999/delete", data={"csrf_token": token}).status_code \
        == 404


def test_integrations_does_not_import_flask():
    code = "import sys, integrations, integrations.delivery, integrations.webhooks, " \
           "integrations.bitrix_query, integrations.cli; assert 'flask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_deliver_webhooks_runs_one_pass(app, org, db, allowed_receiver):
    receiver = allowed_receiver
    from integrations.outgoing import register_handler
    from tests.factories import SYSTEM, make_deal

    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url, guard=receiver.guard)
    db.commit()
    make_deal(db, org.admin)
    db.commit()
    result = app.test_cli_runner().invoke(args=["deliver-webhooks"])
    assert result.exit_code == 0 and result.output == "queued 1, attempted 1\n"
    assert len(receiver.posts) == 1
