"""The real client libraries from PyPI, unmodified, against a real HTTPS server on loopback.

b24pysdk always speaks https: the server gets a self-signed certificate that ``requests``
trusts through ``REQUESTS_CA_BUNDLE``. fast_bitrix24 goes through aiohttp, whose default SSL
context is built at import time, so it is told ``ssl=False`` (its documented switch for
self-signed portals).
"""
from __future__ import annotations

import asyncio

import pytest
from b24pysdk import BitrixWebhook, Client
from fast_bitrix24 import Bitrix
from sqlalchemy import func, select

from crm_models.entities import Deal
from tests.factories import make_deal

from .conftest import make_hook

COUNT = 230


@pytest.fixture()
def deals(db, org):
    for i in range(COUNT):
        make_deal(db, org.m1 if i % 2 else org.m2, title=f"Deal {i:03}", amount=str(100 + i))
    db.commit()


def fast_client(server, hook):
    return Bitrix(server.base_url + hook.path, verbose=False, ssl=False)


def run_sync(fn):
    """fast_bitrix24's synchronous wrapper drives the thread's current event loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return fn()
    finally:
        # aiohttp's documented grace period for SSL connections to finish closing
        loop.run_until_complete(asyncio.sleep(0.25))
        loop.close()
        asyncio.set_event_loop(None)


def test_fast_bitrix24(app, db, org, deals, admin_hook, tls_server):
    b = fast_client(tls_server, admin_hook)

    def scenario():
        everything = b.get_all("crm.deal.list", {"select": ["ID", "TITLE", "OPPORTUNITY"]})
        assert len(everything) == COUNT
        assert len({d["ID"] for d in everything}) == COUNT
        some = b.get_all("crm.deal.list", {"filter": {">OPPORTUNITY": 300}})
        assert len(some) == COUNT - 201
        new_id = b.call("crm.deal.add", {"fields": {"TITLE": "From fast_bitrix24",
                                                    "OPPORTUNITY": "15000.00"}})
        assert isinstance(new_id, int)
        results = b.call("crm.deal.update", [
            {"ID": new_id, "fields": {"TITLE": "Renamed"}},
            {"ID": everything[0]["ID"], "fields": {"OPPORTUNITY": 1}}])
        assert results == (True, True)
        got = b.get_by_ID("crm.deal.get", [new_id, everything[0]["ID"]])
        assert got[str(new_id)]["TITLE"] == "Renamed"
        assert got[str(new_id)]["OPPORTUNITY"] == "15000.00"
        assert got[everything[0]["ID"]]["OPPORTUNITY"] == "1.00"
        return new_id

    new_id = run_sync(scenario)
    assert db.get(Deal, new_id).responsible_id == org.admin.id


def test_fast_bitrix24_raises_on_batch_errors(app, org, admin_hook, tls_server):
    b = fast_client(tls_server, admin_hook)
    with pytest.raises(Exception, match="Not found|No deal"):
        run_sync(lambda: b.get_by_ID("crm.deal.get", [424242]))


def sdk_client(server, hook):
    return Client(BitrixWebhook(domain=server.domain,
                                webhook_token=f"{hook.user_id}/{hook.secret}"))


def test_b24pysdk(app, db, org, deals, admin_hook, tls_server):
    client = sdk_client(tls_server, admin_hook)
    new_id = client.crm.deal.add(fields={"TITLE": "From b24pysdk", "OPPORTUNITY": "15000.00",
                                         "CURRENCY_ID": "EUR"}).result
    assert isinstance(new_id, int)
    deal = client.crm.deal.get(bitrix_id=new_id).result
    assert (deal["TITLE"], deal["OPPORTUNITY"], deal["CURRENCY_ID"]) == (
        "From b24pysdk", "15000.00", "EUR")
    page = client.crm.deal.list(select=["ID", "TITLE"], filter={">OPPORTUNITY": 320})
    assert len(page.result) == COUNT - 221 + 1
    everything = client.crm.deal.list(select=["ID"]).as_list().result
    assert len(everything) == COUNT + 1
    fast = list(client.crm.deal.list(select=["ID", "TITLE"]).as_list_fast().result)
    assert [int(d["ID"]) for d in fast] == sorted(int(d["ID"]) for d in everything)
    batch = client.call_batch({
        "get": client.crm.deal.get(bitrix_id=new_id),
        "list": client.crm.deal.list(select=["ID"], filter={"TITLE": "From b24pysdk"}),
        "contact": client.crm.contact.add(fields={"NAME": "Via", "LAST_NAME": "Batch"}),
    }).result
    assert batch.result["get"]["TITLE"] == "From b24pysdk"
    assert batch.result["list"] == [{"ID": str(new_id)}]
    assert batch.result_total["list"] == 1
    assert isinstance(batch.result["contact"], int)
    assert set(batch.result_time) == {"get", "list", "contact"}
    assert db.scalar(select(func.count()).select_from(Deal)) == COUNT + 1


def test_b24pysdk_errors(app, org, db, admin_hook, tls_server):
    from b24pysdk.errors import BitrixAPIBadRequest, BitrixAPIError

    client = sdk_client(tls_server, admin_hook)
    with pytest.raises(BitrixAPIBadRequest) as exc:
        client.crm.deal.get(bitrix_id=987654).call()
    assert exc.value.error == ""
    with pytest.raises(BitrixAPIError):
        client.crm.deal.add(fields={"OPPORTUNITY": "many"}).call()
    hook = make_hook(db, org.m1, scopes=["user"])
    with pytest.raises(BitrixAPIError) as exc:
        sdk_client(tls_server, hook).crm.deal.list().call()
    assert exc.value.error == "insufficient_scope"


def test_catalog_and_product_rows_with_both_clients(app, db, org, admin_hook, tls_server):
    from crm_models.services import catalog as cat
    from tests.factories import SYSTEM

    for i in range(120):
        cat.create_product(db, SYSTEM, name=f"Товар {i:03}", price=str(10 + i))
    deal = make_deal(db, org.admin)
    db.commit()
    b = fast_client(tls_server, admin_hook)
    products = run_sync(lambda: b.get_all("crm.product.list"))
    assert sorted(p["NAME"] for p in products) == [f"Товар {i:03}" for i in range(120)]
    client = sdk_client(tls_server, admin_hook)
    ids = sorted(int(p["ID"]) for p in products)
    assert client.crm.deal.productrows.set(bitrix_id=deal.id, rows=[
        {"PRODUCT_ID": ids[0], "QUANTITY": 2},
        {"PRODUCT_NAME": "Доставка", "PRICE": 500, "QUANTITY": 1}]).result is True
    rows = client.crm.deal.productrows.get(bitrix_id=deal.id).result
    assert [(r["PRODUCT_NAME"], r["SUM"]) for r in rows] == [("Товар 000", "20.00"),
                                                            ("Доставка", "500.00")]
    db.rollback()
    assert str(db.get(Deal, deal.id).amount) == "520.00"
