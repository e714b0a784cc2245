"""Two ``flask worker`` processes on one database poll the same real Dovecot mailbox with
no lease keeping them apart (``MAIL_LEASE_SECONDS=0``): each message is still imported once —
one e-mail, one timeline activity, one ``email.received`` event — on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from email.message import EmailMessage as Mime
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import func, select

from crm_models.activity import Activity, OutboxEvent
from integrations.mail_models import EmailMessage

from .support import add_mailbox

ROOT = Path(__file__).resolve().parents[2]
COUNT = 12
ROUNDS = 3
#: ``flask --app app worker --id NAME`` with the mail worker's INFO lines in its log.
WORKER = ("import logging, sys; logging.basicConfig(level=logging.WARNING); "
          "logging.getLogger('integrations.mail_worker').setLevel(logging.INFO); "
          "from flask.cli import main; "
          "sys.argv = ['flask', '--app', 'app', 'worker', '--id', sys.argv[1]]; main()")


def _mime(i: int) -> bytes:
    m = Mime()
    m["From"] = "Пётр Петров <petrov@vector.example>"
    m["To"] = "manager1@demo.local"
    m["Subject"] = f"Письмо {i}"
    m["Message-ID"] = make_msgid(domain="vector.example")
    m.set_content(f"Текст {i}")
    return m.as_bytes()


def _counts(db) -> tuple[int, int, int]:
    db.rollback()
    return (db.scalar(select(func.count()).select_from(EmailMessage)
                      .where(EmailMessage.direction == "in")),
            db.scalar(select(func.count()).select_from(Activity)
                      .where(Activity.type == "email")),
            db.scalar(select(func.count()).select_from(OutboxEvent)
                      .where(OutboxEvent.event_type == "email.received")))


def test_two_worker_processes_import_each_message_once(app, db, demo, mail, smtp, imap,
                                                      tmp_path):
    _api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSHRUT_")}
    env.update(MARSHRUT_DATABASE_URL=app.config["DATABASE_URL"],
               MARSHRUT_SECRET_KEY=app.config["SECRET_KEY"],
               MARSHRUT_MAIL_HOST_ALLOWLIST='["127.0.0.1"]', MARSHRUT_MAIL_TIMEOUT="10",
               MARSHRUT_MAIL_POLL_SECONDS="0.5", MARSHRUT_MAIL_LEASE_SECONDS="0",
               MARSHRUT_WEBHOOK_DELIVERY_THREAD="false", PYTHONPATH=str(ROOT),
               PYTHONUNBUFFERED="1")
    if app.config.get("MAIL_KEY"):
        env["MARSHRUT_MAIL_KEY"] = app.config["MAIL_KEY"]
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    procs = []
    try:
        for i, path in enumerate(logs):
            with open(path, "w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER, f"w{i}"], cwd=ROOT, env=env, stdout=out,
                    stderr=subprocess.STDOUT))
        # Both poll the (empty) mailbox before any mail arrives, so they race for every batch.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                "message(s) imported" in p.read_text() for p in logs):
            assert all(p.poll() is None for p in procs), [p.read_text() for p in logs]
            time.sleep(0.2)
        for batch in range(ROUNDS):
            for i in range(batch * COUNT // ROUNDS, (batch + 1) * COUNT // ROUNDS):
                imap.append("manager1", _mime(i))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _counts(db)[0] < (batch + 1) * COUNT // ROUNDS:
                assert all(p.poll() is None for p in procs), [p.read_text() for p in logs]
                time.sleep(0.2)
        time.sleep(2)  # both keep polling; nothing is imported a second time
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    texts = [p.read_text(errors="replace") for p in logs]
    for text in texts:
        assert "message(s) imported" in text, text  # this process did poll the mailbox
        assert "Traceback" not in text, text
    # What each process imported adds up to the messages (a second import would be counted).
    imported = [sum(int(n) for n in re.findall(r": (\d+) of \d+ new message", t)) for t in texts]
    assert sum(imported) == COUNT, texts
    assert _counts(db) == (COUNT, COUNT, COUNT), texts
    subjects = sorted(db.scalars(select(EmailMessage.subject)
                                 .where(EmailMessage.direction == "in")))
    assert subjects == sorted(f"Письмо {i}" for i in range(COUNT))
