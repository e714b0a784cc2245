"""CSV/XLSX import: encodings, separators, mapping, duplicates, dry run, background jobs
that resume after a crash and are never run twice, the error report, rights, routing."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.catalog import Product
from crm_models.entities import Contact, Deal
from crm_models.errors import PermissionDenied, ValidationFailed
from crm_models.permissions import actor_for
from integrations.imports.jobs import create_job, row_errors, start_job
from integrations.imports.models import ImportJob
from integrations.imports.reader import FileProblem, detect, rows
from integrations.imports.runner import JobRunner
from tests.factories import Org, make_contact

CONTACTS_CSV = (
    "Имя;Фамилия;Телефон;E-mail;Должность\r\n"
    "Иван;Петров;8 (916) 555-01-02;ivan@vector.example;Директор\r\n"
    "Ольга;Смирнова;+7 495 123-45-67;olga@vector.example;Бухгалтер\r\n"
    "Пётр;Сидоров;не телефон;petr@vector.example;Инженер\r\n"
    ";;;;\r\n"
    "Анна;Кузнецова;;ANNA@vector.example;\r\n"
)


def runner(app: Any, file_dir: Path, **kw: Any) -> JobRunner:
    return JobRunner(app.extensions["db_sessionmaker"], file_dir, **kw)


def upload(db: Session, user: Any, tmp_path: Path, name: str, content: bytes,
           entity: str = "contact") -> ImportJob:
    stored = "f" + name
    (tmp_path / stored).write_bytes(content)
    job = create_job(db, actor_for(db, user), entity=entity, filename=name, file_dir=tmp_path,
                     stored_name=stored)
    db.commit()
    return job


def test_windows_1251_csv_with_semicolons_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(CONTACTS_CSV.encode("cp1251"))
    fmt = detect(path)
    assert (fmt.file_format, fmt.encoding, fmt.delimiter) == ("csv", "cp1251", ";")
    read = list(rows(path, fmt))
    assert read[0] == (1, ["Имя", "Фамилия", "Телефон", "E-mail", "Должность"])
    assert [n for n, _ in read] == [1, 2, 3, 4, 6]  # the blank line 5 is skipped
    path.write_bytes(b"\xef\xbb\xbf" + "Имя,Телефон\nИван,1".encode())
    assert (detect(path).encoding, detect(path).delimiter) == ("utf-8-sig", ",")


def test_contacts_import_with_duplicates_and_row_errors(app, db: Session, org: Org,
                                                        tmp_path: Path) -> None:
    existing = make_contact(db, org.admin, first_name="Иван", phones=["+7 916 555 01 02"])
    db.commit()
    job = upload(db, org.admin, tmp_path, "contacts.csv", CONTACTS_CSV.encode("cp1251"))
    assert job.mapping == {"0": "first_name", "1": "last_name", "2": "phones", "3": "emails",
                           "4": "position"}
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="skip",
              dry_run=False)
    db.commit()
    assert runner(app, tmp_path, chunk=2).run_once() == job.id
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.status, job.total_rows, job.position) == ("done", 4, 4)
    assert (job.created, job.updated, job.skipped, job.failed) == (2, 0, 1, 1)
    [err] = row_errors(db, job).all()
    assert (err.row, err.column) == (4, "Телефон") and "not a phone number" in err.message
    names = set(db.scalars(select(Contact.last_name)))
    assert {"Смирнова", "Кузнецова"} <= names and "Петров" not in names
    assert db.get(Contact, existing.id).last_name != "Петров"


def test_update_policy_updates_the_duplicate(app, db: Session, org: Org,
                                             tmp_path: Path) -> None:
    existing = make_contact(db, org.admin, first_name="Иван", phones=["+7 916 555 01 02"])
    db.commit()
    job = upload(db, org.admin, tmp_path, "c.csv", CONTACTS_CSV.encode("utf-8"))
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="update",
              dry_run=False)
    db.commit()
    runner(app, tmp_path).run_once()
    db.expire_all()
    assert db.get(Contact, existing.id).position == "Директор"
    assert db.get(ImportJob, job.id).updated == 1


def test_dry_run_reports_and_writes_nothing(app, db: Session, org: Org,
                                            tmp_path: Path) -> None:
    job = upload(db, org.admin, tmp_path, "c.csv", CONTACTS_CSV.encode("cp1251"))
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="skip",
              dry_run=True)
    db.commit()
    runner(app, tmp_path).run_once()
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.status, job.created, job.failed) == ("done", 3, 1)
    assert db.scalar(select(func.count()).select_from(Contact)) == 0
    # … and may then run for real
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="skip",
              dry_run=False)
    db.commit()
    runner(app, tmp_path).run_once()
    assert db.scalar(select(func.count()).select_from(Contact)) == 3


def test_a_missing_required_column_is_named(app, db: Session, org: Org,
                                            tmp_path: Path) -> None:
    job = upload(db, org.admin, tmp_path, "d.csv", "Сумма;Валюта\n100;RUB\n".encode(),
                 entity="deal")
    with pytest.raises(ValidationFailed) as exc:
        start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="skip",
                  dry_run=False)
    assert exc.value.fields == {"title": "is required: map a column to it"}
    # a required cell left empty: row and column named
    job = upload(db, org.admin, tmp_path, "d2.csv",
                 "Название сделки;Сумма\nСтанки;100\n;200\n".encode(), entity="deal")
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="skip",
              dry_run=False)
    db.commit()
    runner(app, tmp_path).run_once()
    [err] = row_errors(db, db.get(ImportJob, job.id)).all()
    assert (err.row, err.column, err.message) == (3, "Название сделки", "is required")


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04broken zip", "not a readable XLSX"),
    ("Имя\nИван\n".encode("utf-16"), "neither a CSV nor an XLSX"),
    (b"", "empty"),
])
def test_bad_files_are_refused_with_a_message(db: Session, org: Org, tmp_path: Path,
                                              content: bytes, message: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        upload(db, org.admin, tmp_path, "bad.xlsx", content)
    assert message in exc.value.fields["file"]


def test_a_wrong_byte_late_in_the_file_fails_the_job_naming_the_row(
        app, db: Session, org: Org, tmp_path: Path) -> None:
    good = "".join(f"Имя{i};+7 916 000 {i:05d}\n" for i in range(3000)).encode()
    content = "Имя;Телефон\n".encode() + good + b"\xff\xfe;1\n"
    assert len(content) > 64 * 1024  # beyond what detection reads
    job = upload(db, org.admin, tmp_path, "late.csv", content)
    assert job.encoding == "utf-8"
    job.mapping = {"0": "first_name", "1": "phones"}
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="create",
              dry_run=False)
    db.commit()
    runner(app, tmp_path, chunk=500).run_once()
    db.expire_all()
    job = db.get(ImportJob, job.id)
    # The whole file is read before a row is imported: nothing half-imported.
    assert job.status == "failed" and job.message.startswith("line 3002 is not valid utf-8")
    assert job.position == 0 and db.scalar(select(func.count()).select_from(Contact)) == 0
    [err] = row_errors(db, job).all()
    assert (err.row, err.column) == (3002, "")


def test_xlsx_deals_are_routed_like_typed_ones(app, db: Session, demo: Any,
                                               tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["Название сделки", "Сумма", "Дата завершения", "Ответственный"])
    ws.append(["Крупная поставка", 2_500_000, dt.date(2030, 5, 1), "manager1@demo.local"])
    ws.append(["Мелкая", 1500.5, "01.06.2030", "manager1@demo.local"])
    ws.append(["Плохая сумма", "много", None, None])
    wb.save(tmp_path / "fdeals.xlsx")
    job = create_job(db, actor_for(db, demo.admin), entity="deal", filename="deals.xlsx",
                     file_dir=tmp_path, stored_name="fdeals.xlsx")
    assert job.file_format == "xlsx"
    start_job(db, actor_for(db, demo.admin), job, mapping=job.mapping, policy="skip",
              dry_run=False)
    db.commit()
    runner(app, tmp_path).run_once()
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.status, job.message, job.created, job.failed) == ("done", "", 2, 1)
    big = db.scalars(select(Deal).where(Deal.title == "Крупная поставка")).one()
    small = db.scalars(select(Deal).where(Deal.title == "Мелкая")).one()
    assert big.amount == Decimal("2500000.00") and big.close_date == dt.date(2030, 5, 1)
    assert small.close_date == dt.date(2030, 6, 1)
    # the large-deal rule gave the big one to the corporate manager; the small one stays
    assert big.responsible_id == demo.corporate.id
    assert small.responsible_id == demo.m1.id


def test_a_crashed_worker_is_taken_over_without_importing_twice(
        app, db: Session, org: Org, tmp_path: Path) -> None:
    lines = "".join(f"Имя{i};+7 916 100 {i:04d}\n" for i in range(25))
    job = upload(db, org.admin, tmp_path, "c.csv", ("Имя;Телефон\n" + lines).encode())
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="create",
              dry_run=False)
    db.commit()
    first = runner(app, tmp_path, worker_id="a", chunk=10, lease=60)
    assert first.claim() == job.id
    first.run(job.id, max_chunks=1)  # … and then the process dies
    second = runner(app, tmp_path, worker_id="b", chunk=10)
    assert second.claim() is None  # the lease still holds
    later = runner(app, tmp_path, worker_id="b", chunk=10,
                   clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert later.run_once() == job.id
    first.run(job.id)  # the old worker comes back: it no longer holds the job
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.status, job.created, job.position) == ("done", 25, 25)
    assert db.scalar(select(func.count()).select_from(Contact)) == 25


def test_parallel_workers_claim_a_job_once(app, db: Session, org: Org,
                                           tmp_path: Path) -> None:
    job = upload(db, org.admin, tmp_path, "c.csv", "Имя\nИван\n".encode())
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="create",
              dry_run=False)
    db.commit()
    claims: list[int | None] = []
    barrier = threading.Barrier(4)

    def claim(n: int) -> None:
        barrier.wait()
        claims.append(runner(app, tmp_path, worker_id=f"w{n}").claim())

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims, key=str) == [job.id, None, None, None]


def test_the_import_right_is_needed(db: Session, org: Org, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes("Имя\nИван\n".encode())
    with pytest.raises(PermissionDenied):
        create_job(db, actor_for(db, org.observer), entity="contact", filename="x.csv",
                   file_dir=tmp_path, stored_name="x.csv")


def test_products_match_by_sku(app, db: Session, org: Org, tmp_path: Path) -> None:
    content = "Артикул;Название;Цена\nA-1;Станок;450000\nA-1;Станок 2;460000\nB-2;Фреза;abc\n"
    job = upload(db, org.admin, tmp_path, "p.csv", content.encode(), entity="product")
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="update",
              dry_run=False)
    db.commit()
    runner(app, tmp_path).run_once()
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.created, job.updated, job.failed) == (1, 1, 1)
    [product] = db.scalars(select(Product)).all()
    assert (product.name, product.price) == ("Станок 2", Decimal("460000.00"))


def test_file_problem_carries_the_row() -> None:
    assert FileProblem("x", row=3).row == 3



def test_the_background_worker_runs_queued_jobs(app, db: Session, org: Org,
                                                tmp_path: Path) -> None:
    import time

    from integrations.imports.runner import ImportWorker

    job = upload(db, org.admin, tmp_path, "c.csv", CONTACTS_CSV.encode("cp1251"))
    start_job(db, actor_for(db, org.admin), job, mapping=job.mapping, policy="create",
              dry_run=False)
    db.commit()
    worker = ImportWorker(runner(app, tmp_path), poll=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.expire_all()
            db.rollback()
            if db.get(ImportJob, job.id).finished:
                break
            time.sleep(0.05)
    finally:
        worker.stop()
        worker.thread.join(10)
    assert db.get(ImportJob, job.id).status == "done"
    assert db.scalar(select(func.count()).select_from(Contact)) == 3  # one bad phone


def test_a_deal_batch_is_routed_in_bulk_once_per_deal(app, db: Session, demo: Any,
                                                      tmp_path: Path) -> None:
    """The app's worker writes a chunk with the after-commit dispatch off and hands its
    events to the dispatcher at once; a chunk whose routing is lost (the process dies after
    the commit) is routed by the recovery loop: every large deal goes to the corporate
    manager, each event starts the rule once."""
    from automation.dispatcher import Dispatcher
    from crm_models.activity import OutboxEvent
    from engine.store import ProcessDefinition, ProcessInstance

    assert app.extensions["import_runner"].route is not None  # the app's worker routes in bulk
    lines = "".join(f"Сделка {i};{'2 500 000' if i % 3 == 0 else '1500'};"
                    f"manager1@demo.local\r\n" for i in range(10))
    content = ("Название сделки;Сумма;Ответственный\r\n" + lines
               + "Плохая;много;manager1@demo.local\r\n").encode("cp1251")
    job = upload(db, demo.admin, tmp_path, "d.csv", content, entity="deal")
    start_job(db, actor_for(db, demo.admin), job, mapping=job.mapping, policy="create",
              dry_run=False)
    db.commit()
    dispatcher: Dispatcher = app.extensions["dispatcher"]
    calls: list[list[int]] = []

    def route(ids: list[int]) -> None:
        calls.append(list(ids))
        if len(calls) == 1:
            raise RuntimeError("the process died right after the commit")
        dispatcher.dispatch(ids)

    runner(app, tmp_path, chunk=4, route=route).run_once()
    assert len(calls) == 3  # one bulk hand-over per chunk (4 + 4 + 3 rows)
    db.expire_all()
    job = db.get(ImportJob, job.id)
    assert (job.status, job.created, job.failed) == ("done", 10, 1)
    titles = [f"Сделка {i}" for i in range(10)]
    deals = {d.title: d for d in db.scalars(select(Deal).where(Deal.title.in_(titles)))}
    events = list(db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "deal.created",
        OutboxEvent.entity_id.in_([d.id for d in deals.values()]))))
    assert len(events) == 10
    first = {d.id for t, d in deals.items() if int(t.split()[1]) < 4}
    # the first chunk's events were not routed (its hand-over failed): still pending
    assert {e.entity_id for e in events if e.dispatched_at is None} == first
    assert deals["Сделка 0"].responsible_id == demo.m1.id
    db.rollback()  # end the read (SQLite keeps a snapshot while it lasts)
    dispatcher.dispatch_pending()  # the recovery loop
    large = db.scalar(select(ProcessDefinition.id).where(
        ProcessDefinition.key == "large_deal_routing", ProcessDefinition.active.is_(True)))
    got = {t: d.responsible_id for t, d in deals.items()}
    assert got == {t: demo.corporate.id if int(t.split()[1]) % 3 == 0 else demo.m1.id
                   for t in deals}
    started = db.execute(select(ProcessInstance.event_id, func.count())
                         .where(ProcessInstance.definition_id == large,
                                ProcessInstance.event_id.in_([e.id for e in events]))
                         .group_by(ProcessInstance.event_id)).all()
    assert sorted(n for _e, n in started) == [1] * 10
    assert all(e.dispatched_at is not None for e in db.scalars(select(OutboxEvent).where(
        OutboxEvent.id.in_([e.id for e in events]))))
    db.rollback()
    dispatcher.dispatch_pending()  # nothing left: nobody is routed twice
    assert db.scalar(select(func.count()).select_from(ProcessInstance).where(
        ProcessInstance.definition_id == large,
        ProcessInstance.event_id.in_([e.id for e in events]))) == 10
