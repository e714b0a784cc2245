"""fast_bitrix24 with its default concurrency (up to 50 requests in flight, batches of 50)
against the real threaded HTTPS server (issue 11, item 7): a 500-item ``call`` of
``crm.deal.add`` sends its ten batches at once; ``get_all`` pages through ``crm.deal.list``,
``user.get`` and ``department.get`` — adding ``order: {"ID": "ASC"}`` to each, a shape
Bitrix24 accepts. No errors, every count right."""
from __future__ import annotations

from sqlalchemy import func, select

from crm_models.entities import Deal
from crm_models.org import Department, User
from tests.factories import make_deal, make_user

from .test_clients import fast_client, run_sync

COUNT = 500


def test_parallel_add_then_get_all(app, db, org, admin_hook, tls_server):
    b = fast_client(tls_server, admin_hook)
    items = [{"fields": {"TITLE": f"Parallel {i:03}", "OPPORTUNITY": f"{100 + i}.00",
                         "ASSIGNED_BY_ID": org.m1.id if i % 2 else org.m2.id}}
             for i in range(COUNT)]
    ids = run_sync(lambda: b.call("crm.deal.add", items))
    assert len(ids) == COUNT and all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == COUNT
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Deal)) == COUNT
    titles = set(db.scalars(select(Deal.title)))
    assert titles == {f"Parallel {i:03}" for i in range(COUNT)}

    listed = run_sync(lambda: b.get_all("crm.deal.list", {"select": ["ID", "TITLE"]}))
    assert len(listed) == COUNT
    assert {int(d["ID"]) for d in listed} == set(ids)
    big = run_sync(lambda: b.get_all("crm.deal.list", {"filter": {">=OPPORTUNITY": 400}}))
    assert len(big) == COUNT - 300


def test_get_all_users_and_departments(app, db, org, admin_hook, tls_server):
    for i in range(120):  # more than two pages of 50
        make_user(db, department_id=org.sales_id if i % 2 else org.corporate_id)
    db.commit()
    users = db.scalar(select(func.count()).select_from(User))
    departments = db.scalar(select(func.count()).select_from(Department))
    b = fast_client(tls_server, admin_hook)
    got = run_sync(lambda: b.get_all("user.get"))
    assert len(got) == users
    assert len({u["ID"] for u in got}) == users
    in_sales = run_sync(lambda: b.get_all("user.get", {"FILTER": {"UF_DEPARTMENT":
                                                                 org.sales_id}}))
    assert len(in_sales) == 60 + 3  # the new ones, the head and both managers
    deps = run_sync(lambda: b.get_all("department.get"))
    assert sorted(int(d["ID"]) for d in deps) == list(range(1, departments + 1))


def test_throttled_answers_are_retried_by_the_client(app, db, org, admin_hook, tls_server,
                                                     monkeypatch):
    """A full bucket answers 503 QUERY_LIMIT_EXCEEDED, which fast_bitrix24 takes for "slow
    down": it retries with backoff and every record still arrives."""
    from integrations import webhooks

    ids = [make_deal(db, org.m1, title=f"D{i}").id for i in range(150)]
    db.commit()
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 1)  # one request a second
    monkeypatch.setitem(app.config, "BITRIX_RATE_PER_SECOND", 1)
    refused = []
    admit = webhooks.admit

    def counting_admit(*args, **kwargs):
        allowed = admit(*args, **kwargs)
        if not allowed:
            refused.append(1)
        return allowed

    monkeypatch.setattr(webhooks, "admit", counting_admit)
    b = fast_client(tls_server, admin_hook)
    got = run_sync(lambda: b.get_by_ID("crm.deal.get", ids))  # three batches at once
    assert sorted(int(k) for k in got) == ids
    assert refused, "the bucket never refused: the test did not exercise the 503 path"
