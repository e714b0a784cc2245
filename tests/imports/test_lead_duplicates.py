"""Leads in a file import match the CRM's leads by phone (normalised: ``8 (916) …`` is
``+7 916 …``) or e-mail (any case), with the job's per-row policy (skip / update / create),
as contacts and companies do; the keys follow a lead's edits and deletion."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.entities import Lead
from crm_models.permissions import actor_for
from crm_models.services import records
from crm_models.services.duplicates import candidates
from integrations.imports.jobs import start_job
from integrations.imports.models import ImportJob
from tests.factories import SYSTEM, Org, make_lead

from .test_file_import import runner, upload

LEADS_CSV = (
    "Название лида;Телефон;E-mail;Сумма\r\n"
    "Заявка с сайта;8 (916) 555-01-02;;1000\r\n"
    "Звонок;+7 495 000-00-01;OLGA@Vector.Example;2000\r\n"
    "Новая заявка;+7 903 111-22-33;new@vector.example;3000\r\n"
)
MAPPING = {"0": "title", "1": "phones", "2": "emails", "3": "amount"}


def run(app, db: Session, org: Org, tmp_path: Path, policy: str) -> ImportJob:
    job = upload(db, org.admin, tmp_path, f"leads-{policy}.csv", LEADS_CSV.encode("cp1251"),
                 entity="lead")
    start_job(db, actor_for(db, org.admin), job, mapping=MAPPING, policy=policy,
              dry_run=False)
    db.commit()
    assert runner(app, tmp_path, chunk=2).run_once() == job.id
    db.expire_all()
    return db.get(ImportJob, job.id)


def leads(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Lead))


def seed(db: Session, org: Org) -> tuple[Lead, Lead]:
    by_phone = make_lead(db, org.admin, title="Старая заявка", phones=["+7 916 555 01 02"])
    by_mail = make_lead(db, org.admin, title="Ольга", emails=["olga@vector.example"])
    db.commit()
    return by_phone, by_mail


def test_skip_leaves_matching_leads_alone(app, db: Session, org: Org, tmp_path: Path) -> None:
    by_phone, by_mail = seed(db, org)
    count = leads(db)
    job = run(app, db, org, tmp_path, "skip")
    assert (job.status, job.created, job.updated, job.skipped, job.failed) == (
        "done", 1, 0, 2, 0)
    assert leads(db) == count + 1
    assert db.get(Lead, by_phone.id).title == "Старая заявка"


def test_update_changes_the_matching_leads(app, db: Session, org: Org, tmp_path: Path) -> None:
    by_phone, by_mail = seed(db, org)
    count = leads(db)
    job = run(app, db, org, tmp_path, "update")
    assert (job.created, job.updated, job.skipped) == (1, 2, 0)
    assert leads(db) == count + 1
    assert db.get(Lead, by_phone.id).title == "Заявка с сайта"
    assert str(db.get(Lead, by_mail.id).amount) == "2000.00"


def test_create_makes_new_leads_whatever_matches(app, db: Session, org: Org,
                                                tmp_path: Path) -> None:
    seed(db, org)
    count = leads(db)
    job = run(app, db, org, tmp_path, "create")
    assert (job.created, job.updated, job.skipped) == (3, 0, 0)
    assert leads(db) == count + 3


def test_lead_keys_follow_edits_and_deletion(db: Session, org: Org) -> None:
    lead = make_lead(db, org.admin, phones=["8 916 777-00-00"])
    db.commit()
    assert [d.record.id for d in candidates(db, SYSTEM, "lead", phones=["+79167770000"])] == [
        lead.id]
    records.update(db, SYSTEM, "lead", lead.id, {"phones": ["+7 916 777-00-01"]})
    db.commit()
    assert candidates(db, SYSTEM, "lead", phones=["+79167770000"]) == []
    assert len(candidates(db, SYSTEM, "lead", phones=["89167770001"])) == 1
    records.delete(db, SYSTEM, "lead", lead.id)
    db.commit()
    assert candidates(db, SYSTEM, "lead", phones=["89167770001"]) == []
