"""The invoice PDF attached to an e-mail is laid out in the e-mail's language: the one chosen
(API ``lang``, the compose page's language), else the sender's UI language — read back from
the PDF on the SMTP server with pdftotext."""
from __future__ import annotations

import email
import email.policy
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import select, update

from crm_models.invoices import Invoice
from crm_models.org import User

from .support import add_mailbox


def _pdf_text(raw: bytes, tmp: Path) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    [pdf] = [p for p in parsed.iter_attachments() if p.get_content_type() == "application/pdf"]
    path = tmp / "attached.pdf"
    path.write_bytes(pdf.get_payload(decode=True))
    assert shutil.which("pdftotext"), "pdftotext is missing: make pdf-deps"
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, timeout=60)
    return " ".join(out.stdout.decode("utf-8").split())


def test_the_attached_pdf_follows_the_language(app, db, demo, mail, smtp, tmp_path,
                                               auth, client):
    inv = db.scalars(select(Invoice)).one()
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local",
                          email="head@demo.local")
    # Chosen explicitly: English, though the sender's UI is Russian.
    assert api.post(f"/api/v1/invoices/{inv.id}/send", json={"lang": "en"}).status_code == 201
    assert mail.send_due() == 1
    text = _pdf_text(smtp.received[-1].data, tmp_path)
    assert f"Invoice No. {inv.number}" in text and "Счёт на оплату" not in text
    # Not chosen: the sender's UI language (English here, then Russian).
    db.execute(update(User).where(User.email == "head@demo.local").values(locale="en"))
    db.commit()
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "invoice",
                                         "entity_id": inv.id, "to": ["petrov@vector.example"],
                                         "subject": "Invoice", "body": "Attached",
                                         "attach_invoice_id": inv.id})
    assert r.status_code == 201, r.get_json()
    assert mail.send_due() == 1
    assert f"Invoice No. {inv.number}" in _pdf_text(smtp.received[-1].data, tmp_path)
    db.execute(update(User).where(User.email == "head@demo.local").values(locale="ru"))
    db.commit()
    # The compose page's language goes with the form.
    auth.login("head@demo.local")
    page = client.get(f"/mail/compose/invoice/{inv.id}?lang=en").get_data(as_text=True)
    assert '<input type="hidden" name="lang" value="en">' in page
    token = auth.csrf_token(f"/mail/compose/invoice/{inv.id}")
    r = client.post(f"/mail/compose/invoice/{inv.id}", data={
        "csrf_token": token, "lang": "ru", "mailbox_id": str(mb["id"]),
        "to": "petrov@vector.example", "subject": "Счёт", "body": "Во вложении",
        "attach_invoice_id": str(inv.id)})
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    assert mail.send_due() == 1
    text = _pdf_text(smtp.received[-1].data, tmp_path)
    assert f"Счёт на оплату № {inv.number}" in text and "Invoice No." not in text
