"""The 1C exchange, round 2: ``mode=import`` answers ``progress`` in bounded steps until the
file is done (driven over HTTP as 1C does: it calls again until ``success``), stock and
properties from the catalog files kept on the product (card and API), and sale documents
sent in several ``mode=file`` parts taken once whole."""
from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_models.activity import Comment
from crm_models.catalog import Product
from crm_models.entities import Deal
from crm_models.services import catalog as cat
from crm_models.services import create_deal
from crm_models.services.product_rows import set_product_rows
from integrations.imports.commerceml import ExchangeSession
from tests.factories import SYSTEM
from tests.web.api_support import api_for

from .test_commerceml import IMPORT_XML, OFFERS_XML, OneC


def many_products(n: int, bad_last: bool = False) -> bytes:
    items = "".join(
        f"<Товар><Ид>m-{i}</Ид><Артикул>M-{i}</Артикул><Наименование>"
        f"{'' if bad_last and i == n - 1 else f'Деталь {i}'}</Наименование>"
        f"<ЗначенияСвойств><ЗначенияСвойства><Ид>p-col</Ид><Значение>v-red</Значение>"
        f"</ЗначенияСвойства></ЗначенияСвойств></Товар>" for i in range(n))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.08"><Классификатор><Ид>c</Ид>
<Свойства><Свойство><Ид>p-col</Ид><Наименование>Цвет</Наименование>
<ТипЗначений>Справочник</ТипЗначений><ВариантыЗначений>
<Справочник><ИдЗначения>v-red</ИдЗначения><Значение>Красный</Значение></Справочник>
</ВариантыЗначений></Свойство></Свойства></Классификатор>
<Каталог><Ид>cat</Ид><Товары>{items}</Товары></Каталог></КоммерческаяИнформация>""".encode()


def import_until_done(one: OneC, filename: str, limit: int = 50) -> list[str]:
    answers = []
    for _ in range(limit):
        answers.append(one.get("import", filename=filename))
        if not answers[-1].startswith("progress"):
            return answers
    raise AssertionError(f"no end after {limit} calls: {answers[-3:]}")


def product_count(db: Any) -> int:
    db.rollback()
    n = db.scalar(select(func.count()).select_from(Product))
    db.rollback()
    return n


def test_import_answers_progress_in_bounded_steps(app, db, demo, client, exchange_dir,
                                                  monkeypatch) -> None:
    monkeypatch.setitem(app.config, "EXCHANGE_1C_IMPORT_STEP", 3)
    before = product_count(db)
    one = OneC(client, "catalog")
    one.checkauth("admin@demo.local")
    one.get("init")
    data = many_products(7)
    # several parts with the same name are appended into one file
    assert set(one.send("import.xml", data, chunk=500)) == {"success"} and len(data) > 1500
    first = one.get("import", filename="import.xml")
    assert first == "progress\nimport.xml: 3 of 7", first
    assert product_count(db) == before + 3  # the step is committed, 1C's next call goes on
    state = db.scalars(select(ExchangeSession).order_by(ExchangeSession.id.desc())).first()
    assert state.state["import"]["position"] == 3
    db.rollback()
    from tests.conftest import AuthActions

    AuthActions(client).login("admin@demo.local")  # the admin page shows where it stands
    page = client.get("/admin/exchange-1c").get_data(as_text=True)
    assert "Загрузка import.xml: 3 из 7" in page and '<progress max="7" value="3">' in page
    rest = import_until_done(one, "import.xml")
    assert rest[0] == "progress\nimport.xml: 6 of 7"
    assert rest[1].startswith("success\nimport.xml: 7 created, 0 updated"), rest
    assert len(rest) == 2
    assert product_count(db) == before + 7
    part = db.scalars(select(Product).where(Product.sku == "M-4")).one()
    assert part.properties == {"Цвет": "Красный"}  # the value's Ид resolved to its text
    db.rollback()
    # called again after success: the same file is imported again, changing nothing
    again = import_until_done(one, "import.xml")
    assert again[-1].startswith("success\nimport.xml: 0 created, 0 updated, 7 unchanged")
    assert product_count(db) == before + 7


def test_a_bad_product_late_in_the_file_imports_nothing(app, db, demo, client, exchange_dir,
                                                        monkeypatch) -> None:
    monkeypatch.setitem(app.config, "EXCHANGE_1C_IMPORT_STEP", 2)
    before = product_count(db)
    one = OneC(client, "catalog")
    one.checkauth("admin@demo.local")
    one.get("init")
    one.send("import.xml", many_products(6, bad_last=True), chunk=10 ** 6)
    answer = one.get("import", filename="import.xml")
    assert answer == "failure\nimport.xml: product 'm-5': name: is required", answer
    assert product_count(db) == before  # checked whole before the first step wrote
    # an offer whose quantity is not a number: refused, no price or stock written
    good = IMPORT_XML.format(enc="UTF-8", second="Фреза", mark="").encode()
    one.get("init")
    one.send("import.xml", good)
    assert import_until_done(one, "import.xml")[-1].startswith("success")
    one.send("offers.xml", OFFERS_XML.replace("<Количество>3</Количество>",
                                              "<Количество>много</Количество>").encode())
    answer = one.get("import", filename="offers.xml")
    assert answer == "failure\noffer 't-1': Количество is not a number", answer
    db.rollback()
    machine = db.scalars(select(Product).where(Product.sku == "CNC-450")).one()
    assert (machine.stock, machine.price) == (None, Decimal("0.00"))


def test_stock_and_properties_on_the_card_and_in_the_api(app, db, demo, client, exchange_dir,
                                                         auth) -> None:
    one = OneC(client, "catalog")
    one.checkauth("admin@demo.local")
    one.get("init")
    one.send("import.xml", IMPORT_XML.format(enc="UTF-8", second="Фреза", mark="").encode())
    assert import_until_done(one, "import.xml")[-1].startswith("success")
    one.send("offers.xml", OFFERS_XML.encode())
    done = import_until_done(one, "offers.xml")[-1]
    assert done.startswith("success") and "1 stock" in done, done
    db.rollback()
    machine = db.scalars(select(Product).where(Product.sku == "CNC-450")).one()
    assert machine.stock == Decimal("3.000")
    assert machine.properties == {"Мощность": "5 кВт"}
    db.rollback()
    # 2.08+: the stock by warehouse, summed; goods oversold in 1C come as a negative number
    warehouses = OFFERS_XML.replace(
        "<Количество>3</Количество>",
        '<Склад ИдСклада="s1" КоличествоНаСкладе="2.5"/><Склад ИдСклада="s2" '
        'КоличествоНаСкладе="4"/>')
    one.send("offers2.xml", warehouses.encode())
    assert import_until_done(one, "offers2.xml")[-1].startswith("success")
    db.rollback()
    assert db.get(Product, machine.id).stock == Decimal("6.500")
    db.rollback()
    api = api_for(app, db, demo.admin)
    body = api.get(f"/api/v1/products/{machine.id}").get_json()
    assert body["stock"] == "6.500" and body["properties"] == {"Мощность": "5 кВт"}, body
    auth.login("admin@demo.local")
    page = client.get(f"/products/{machine.id}").get_data(as_text=True)
    assert 'class="product-stock">6.500' in page and "Мощность" in page and "5 кВт" in page
    assert "Остаток" in page  # the Russian UI
    # a product 1C never reported stock for says so
    other = cat.create_product(db, SYSTEM, name="Услуга")
    db.commit()
    page = client.get(f"/products/{other.id}").get_data(as_text=True)
    assert 'class="product-stock">не передан' in page
    # the service refuses a stock that is not a quantity, naming the field
    from crm_models.errors import ValidationFailed

    try:
        cat.update_product(db, SYSTEM, other.id, stock="1.2345")
    except ValidationFailed as exc:
        assert "stock" in exc.fields
    else:
        raise AssertionError("a stock with four decimals was taken")
    db.rollback()


def _order(db: Any, demo: Any) -> Deal:
    machine = cat.create_product(db, SYSTEM, name="Станок", sku="CNC-9", price="10.00")
    deal = create_deal(db, SYSTEM, title="Заказ", responsible_id=demo.m1.id)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"product_id": machine.id, "quantity": 1}])
    db.commit()
    return deal


def _statuses(deal_id: int, encoding: str = "UTF-8") -> bytes:
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<КоммерческаяИнформация ВерсияСхемы="2.08"><Документ><Ид>{deal_id}</Ид><Номер>{deal_id}</Номер>
<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Статус заказа</Наименование>
<Значение>Отгружен</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Документ>
{"<!-- " + "заполнитель " * 80 + "-->"}
</КоммерческаяИнформация>""".encode("cp1251" if encoding != "UTF-8" else "utf-8")


def _comments(db: Any, deal_id: int) -> int:
    db.rollback()
    n = db.scalar(select(func.count()).select_from(Comment).where(
        Comment.entity_type == "deal", Comment.entity_id == deal_id))
    db.rollback()
    return n


def test_a_sale_file_sent_in_parts_is_taken_once_whole(app, db, demo, client,
                                                       exchange_dir) -> None:
    deal = _order(db, demo)
    one = OneC(client, "sale")
    one.checkauth("admin@demo.local")
    one.get("init")
    data = _statuses(deal.id, "windows-1251")
    parts = [data[i:i + 300] for i in range(0, len(data), 300)]
    assert len(parts) >= 3
    for i, part in enumerate(parts):
        r = client.post("/bitrix/admin/1c_exchange.php", query_string={
            "type": "sale", "mode": "file", "filename": "orders-1.xml"}, data=part,
            content_type="application/octet-stream")
        assert r.get_data(as_text=True) == "success"
        db.rollback()
        db.expire_all()
        won = db.get(Deal, deal.id).stage.semantics == "won"
        assert won == (i == len(parts) - 1), i  # nothing applied before the last part
    assert _comments(db, deal.id) == 1
    # mode=import afterwards (newer 1C modules ask it): nothing left, nothing applied twice
    assert one.get("import", filename="") == "success"
    assert _comments(db, deal.id) == 1
    # a zip sent in parts: taken when the archive is whole
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("orders-2.xml", _statuses(deal.id))
    zipped = buf.getvalue()
    answers = one.send("orders.zip", zipped, chunk=len(zipped) // 2 + 1)
    assert answers == ["success", "success"]
    assert _comments(db, deal.id) == 2


def test_a_sale_file_never_completed_fails_at_import(app, db, demo, client,
                                                    exchange_dir) -> None:
    deal = _order(db, demo)
    one = OneC(client, "sale")
    one.checkauth("admin@demo.local")
    one.get("init")
    data = _statuses(deal.id)
    assert one.send("orders-3.xml", data[: len(data) // 2], chunk=10 ** 6) == ["success"]
    answer = one.get("import", filename="orders-3.xml")
    assert answer.startswith("failure\norders-3.xml: not a valid XML document"), answer
    db.rollback()
    db.expire_all()
    assert db.get(Deal, deal.id).stage.semantics != "won"
    assert _comments(db, deal.id) == 0
