"""The 1C exchange (CommerceML 2) driven over HTTP the way 1C does it: checkauth → init →
file (chunks, a zip with pictures) → import, repeated; orders out with query/success and their
statuses back; bad input answered with the documented failure line."""
from __future__ import annotations

import base64
import io
import zipfile
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_models.catalog import Product, ProductSection
from crm_models.entities import Deal
from crm_models.services import catalog as cat
from crm_models.services import create_deal
from crm_models.services.invoices import create_invoice
from crm_models.services.product_rows import set_product_rows
from integrations.imports.commerceml import ExchangeSession
from tests.factories import SYSTEM

URL = "/bitrix/admin/1c_exchange.php"

IMPORT_XML = """<?xml version="1.0" encoding="{enc}"?>
<КоммерческаяИнформация ВерсияСхемы="2.08">
 <Классификатор><Ид>cls</Ид><Наименование>Классификатор</Наименование>
  <Группы>
   <Группа><Ид>g-1</Ид><Наименование>Станки</Наименование>
    <Группы><Группа><Ид>g-2</Ид><Наименование>Фрезерные</Наименование></Группа></Группы>
   </Группа>
  </Группы>
  <Свойства><Свойство><Ид>p-1</Ид><Наименование>Мощность</Наименование></Свойство></Свойства>
 </Классификатор>
 <Каталог СодержитТолькоИзменения="false"><Ид>cat</Ид><ИдКлассификатора>cls</ИдКлассификатора>
  <Товары>
   <Товар><Ид>t-1</Ид><Артикул>CNC-450</Артикул><Наименование>Станок ЧПУ</Наименование>
    <БазоваяЕдиница Код="796" НаименованиеПолное="Штука">шт</БазоваяЕдиница>
    <Группы><Ид>g-2</Ид></Группы>
    <ЗначенияСвойств><ЗначенияСвойства><Ид>p-1</Ид><Значение>5 кВт</Значение></ЗначенияСвойства></ЗначенияСвойств>
    <СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>20</Ставка></СтавкаНалога></СтавкиНалогов>
   </Товар>
   <Товар><Ид>t-2</Ид><Артикул>F-1</Артикул><Наименование>{second}</Наименование>
    <БазоваяЕдиница Код="166">кг</БазоваяЕдиница><Группы><Ид>g-1</Ид></Группы>
    {mark}
   </Товар>
  </Товары>
 </Каталог>
</КоммерческаяИнформация>
"""

OFFERS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.08">
 <ПакетПредложений><Ид>cat#</Ид>
  <ТипыЦен>
   <ТипЦены><Ид>pt-opt</Ид><Наименование>Оптовая</Наименование><Валюта>RUB</Валюта></ТипЦены>
   <ТипЦены><Ид>pt-ret</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены>
  </ТипыЦен>
  <Предложения>
   <Предложение><Ид>t-1</Ид><Наименование>Станок ЧПУ</Наименование>
    <Цены>
     <Цена><ИдТипаЦены>pt-opt</ИдТипаЦены><ЦенаЗаЕдиницу>400000</ЦенаЗаЕдиницу><Валюта>руб</Валюта></Цена>
     <Цена><ИдТипаЦены>pt-ret</ИдТипаЦены><ЦенаЗаЕдиницу>450000.00</ЦенаЗаЕдиницу><Валюта>руб</Валюта></Цена>
    </Цены><Количество>3</Количество>
   </Предложение>
  </Предложения>
 </ПакетПредложений>
</КоммерческаяИнформация>
"""


class OneC:
    """What 1C does: Basic auth once, then the cookie; files POSTed in chunks."""

    def __init__(self, client: Any, kind: str) -> None:
        self.client, self.kind = client, kind

    def get(self, mode: str, **args: str) -> str:
        r = self.client.get(URL, query_string={"type": self.kind, "mode": mode, **args})
        assert r.status_code == 200
        return r.get_data(as_text=True)

    def checkauth(self, email: str, password: str = "demo") -> str:
        token = base64.b64encode(f"{email}:{password}".encode()).decode()
        r = self.client.get(URL, query_string={"type": self.kind, "mode": "checkauth"},
                            headers={"Authorization": f"Basic {token}"})
        text = r.get_data(as_text=True)
        if text.startswith("success"):
            _, name, value = text.split("\n")
            self.client.set_cookie(name, value)
        return text

    def send(self, filename: str, data: bytes, chunk: int = 1000) -> list[str]:
        out = []
        for i in range(0, len(data), chunk):
            r = self.client.post(URL, query_string={"type": self.kind, "mode": "file",
                                                    "filename": filename},
                                 data=data[i:i + chunk],
                                 content_type="application/octet-stream")
            out.append(r.get_data(as_text=True))
        return out


def run_catalog(client: Any, import_xml: bytes, offers: bytes = OFFERS_XML.encode(),
                zipped: bool = False) -> list[str]:
    one = OneC(client, "catalog")
    assert one.checkauth("admin@demo.local").startswith("success\nmarshrut_1c\n")
    assert one.get("init").split("\n")[0] in ("zip=yes", "zip=no")
    assert one.get("init").split("\n")[1].startswith("file_limit=")
    if zipped:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("import.xml", import_xml)
            zf.writestr("import_files/ab/photo.jpg", b"\xff\xd8\xff" + b"0" * 500)
        assert set(one.send("import.zip", buf.getvalue())) == {"success"}
    else:
        assert set(one.send("import.xml", import_xml)) == {"success"}
    assert set(one.send("offers.xml", offers)) == {"success"}
    return [one.get("import", filename="import.xml"), one.get("import", filename="offers.xml")]


def test_a_full_catalog_exchange_as_1c_does_it(app, db, demo, client, exchange_dir) -> None:
    first = IMPORT_XML.format(enc="windows-1251", second="Фреза", mark="").encode("cp1251")
    answers = run_catalog(client, first, zipped=True)
    assert all(a.startswith("success") for a in answers), answers
    db.rollback()
    machine = db.scalars(select(Product).where(Product.sku == "CNC-450")).one()
    assert (machine.name, machine.unit, machine.vat_rate, machine.price) == (
        "Станок ЧПУ", "pcs", "20", Decimal("450000.00"))  # the retail price type
    section = db.get(ProductSection, machine.section_id)
    assert section.name == "Фрезерные" and db.get(ProductSection, section.parent_id).name == \
        "Станки"
    assert db.scalars(select(Product.unit).where(Product.sku == "F-1")).one() == "kg"
    # a repeated exchange changes nothing
    count = db.scalar(select(func.count()).select_from(Product))
    again = run_catalog(client, first)
    assert "0 created, 0 updated, 2 unchanged" in again[0], again
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Product)) == count
    # an update and a deletion mark
    changed = IMPORT_XML.format(enc="UTF-8", second="Фреза концевая",
                                mark="<ПометкаУдаления>true</ПометкаУдаления>").encode()
    answers = run_catalog(client, changed)
    assert "1 deleted" in answers[0], answers
    db.rollback()
    db.expire_all()
    f1 = db.scalars(select(Product).where(Product.sku == "F-1")).one()
    assert (f1.name, f1.active) == ("Фреза концевая", False)
    # the admin page shows the sessions
    from tests.conftest import AuthActions

    AuthActions(client).login("admin@demo.local")
    page = client.get("/admin/exchange-1c").get_data(as_text=True)
    assert "import.xml" in page and "catalog" in page


def test_bad_exchanges_answer_failure_and_import_nothing(app, db, demo, client, exchange_dir,
                                                         monkeypatch) -> None:
    products = db.scalar(select(func.count()).select_from(Product))
    db.rollback()
    one = OneC(client, "catalog")
    assert one.checkauth("admin@demo.local", "wrong") == "failure\nwrong login or password"
    assert one.get("init").startswith("failure\nnot authorized")
    assert one.checkauth("manager1@demo.local").startswith("failure")  # no import right
    one.checkauth("admin@demo.local")
    good = IMPORT_XML.format(enc="UTF-8", second="Фреза", mark="").encode()
    one.send("import.xml", good[: len(good) // 2])  # truncated
    answer = one.get("import", filename="import.xml")
    assert answer.startswith("failure\nimport.xml: not a valid XML document"), answer
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Product)) == products
    # an unknown price type names the ones the file has
    monkeypatch.setitem(app.config, "EXCHANGE_1C_PRICE_TYPE", "Закупочная")
    one2 = OneC(client, "catalog")
    one2.checkauth("admin@demo.local")
    one2.send("import.xml", good)
    assert one2.get("import", filename="import.xml").startswith("success")
    one2.send("offers.xml", OFFERS_XML.encode())
    answer = one2.get("import", filename="offers.xml")
    assert answer == ("failure\nunknown price type 'Закупочная' (the file has: Оптовая, "
                      "Розничная)")
    db.rollback()
    assert db.scalars(select(Product.price).where(Product.sku == "CNC-450")).one() == 0
    # a 2 GB upload is refused before a byte is read
    r = client.post(URL, query_string={"type": "catalog", "mode": "file",
                                       "filename": "huge.zip"},
                    data=b"x", environ_overrides={"CONTENT_LENGTH": str(2 * 1024 ** 3)})
    assert r.get_data(as_text=True).startswith("failure\nthe file is larger than")
    assert one.get("bogus").startswith("failure\nunknown mode")
    # chunks adding up past the limit: refused, the partial file removed
    monkeypatch.setitem(app.config, "EXCHANGE_1C_FILE_LIMIT", 1500)
    answers = one.send("big.xml", b"0" * 2000, chunk=1000)
    assert answers == ["success", "failure\nthe file is larger than 1500 bytes"]
    assert not list(exchange_dir.rglob("big.xml"))
    session = db.scalars(select(ExchangeSession).order_by(ExchangeSession.id.desc())).first()
    assert session.errors >= 1


def test_orders_go_to_1c_and_statuses_come_back(app, db, demo, client, exchange_dir) -> None:
    machine = cat.create_product(db, SYSTEM, name="Станок", sku="CNC-1", price="1000.00")
    deal = create_deal(db, SYSTEM, title="Заказ с сайта", responsible_id=demo.m1.id)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"product_id": machine.id, "quantity": 2}])
    create_deal(db, SYSTEM, title="Без товаров", responsible_id=demo.m1.id)
    invoice = create_invoice(db, SYSTEM, deal_id=deal.id)
    db.commit()
    one = OneC(client, "sale")
    assert one.checkauth("admin@demo.local").startswith("success")
    document = one.get("query")
    assert f"<Ид>{deal.id}</Ид>" in document and "Без товаров" not in document
    assert "<Количество>2.000</Количество>" in document
    assert one.get("success") == "success"
    assert "<Документ>" not in one.get("query")  # confirmed: not sent again
    statuses = f"""<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.08"><Документ><Ид>{deal.id}</Ид><Номер>{deal.id}</Номер>
<ЗначенияРеквизитов>
 <ЗначениеРеквизита><Наименование>Дата оплаты по 1С</Наименование><Значение>2026-12-06</Значение></ЗначениеРеквизита>
 <ЗначениеРеквизита><Наименование>Статус заказа</Наименование><Значение>Отгружен</Значение></ЗначениеРеквизита>
</ЗначенияРеквизитов></Документ></КоммерческаяИнформация>""".encode()
    assert one.send("orders.xml", statuses, chunk=10 ** 6) == ["success"]
    db.rollback()
    db.expire_all()
    from crm_models.invoices import Invoice

    assert db.get(Invoice, invoice.id).stage == "paid"
    assert db.get(Deal, deal.id).stage.semantics == "won"
