"""Pictures from the 1C exchange, driven over HTTP as 1C does it (checkauth → init → file →
import until ``success``): a product's first ``Картинка`` — inside the zip or uploaded alone —
becomes its picture, served on its page; the same bytes again write nothing, new bytes
replace it; a missing, non-image or truncated picture leaves the product imported and the
session with an error naming the product and the file; unsafe names in a zip or an upload
never write outside the session's folder."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from crm_models.activity import OutboxEvent
from crm_models.catalog import Product
from crm_models.images import StoredImage
from integrations.imports.commerceml import ExchangeSession
from tests.crm.test_images import picture
from tests.web.api_support import api_for

from .test_commerceml import OFFERS_XML, OneC
from .test_commerceml_steps import import_until_done

CNC = "import_files/ab/cnc-450.jpg"
MILL = "import_files/cd/f1.png"


def import_xml(first: str = CNC, second: str = MILL, extra: str = "") -> bytes:
    """Two products with a picture each (the first with a second picture, ignored)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.08">
 <Каталог><Ид>cat</Ид><Товары>
  <Товар><Ид>t-1</Ид><Артикул>CNC-450</Артикул><Наименование>Станок ЧПУ</Наименование>
   <Картинка>{first}</Картинка><Картинка>import_files/ab/cnc-back.jpg</Картинка></Товар>
  <Товар><Ид>t-2</Ид><Артикул>F-1</Артикул><Наименование>Фреза</Наименование>
   <Картинка>{second}</Картинка></Товар>
  {extra}
 </Товары></Каталог>
</КоммерческаяИнформация>""".encode()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def exchange(client: Any, files: dict[str, bytes], *, alone: dict[str, bytes] | None = None,
             xml: tuple[str, ...] = ("import.xml", "offers.xml"),
             init: str = "zip=yes") -> tuple[OneC, list[str]]:
    """One whole catalog exchange: ``files`` in a zip (zip=yes) and/or ``alone`` as separate
    uploads (zip=no, in several chunks each); then ``import`` of each XML until done."""
    one = OneC(client, "catalog")
    assert one.checkauth("admin@demo.local").startswith("success\nmarshrut_1c\n")
    assert one.get("init").split("\n")[0] == init
    if files:
        assert set(one.send("import.zip", zipped(files), chunk=700)) == {"success"}
    for name, data in (alone or {}).items():
        assert set(one.send(name, data, chunk=700)) == {"success"}, name
    answers = [import_until_done(one, name)[-1] for name in xml]
    return one, answers


def product(db: Any, sku: str) -> Product:
    db.rollback()
    return db.scalars(select(Product).where(Product.sku == sku)).one()


def counts(db: Any) -> tuple[int, int]:
    """(stored pictures, product.updated events), as committed."""
    db.rollback()
    out = (db.scalar(select(func.count()).select_from(StoredImage)),
           db.scalar(select(func.count()).select_from(OutboxEvent)
                     .where(OutboxEvent.event_type == "product.updated")))
    db.rollback()
    return out


def last_session(db: Any) -> ExchangeSession:
    db.rollback()
    return db.scalars(select(ExchangeSession).order_by(ExchangeSession.id.desc())).first()


def errors_of(session: ExchangeSession) -> list[dict[str, Any]]:
    return [e for e in session.log if "mode" in e and not e["ok"]]


def test_pictures_in_the_zip_are_stored_shown_and_kept_once(app, db, demo, client,
                                                            exchange_dir, auth) -> None:
    jpeg, png = picture("JPEG", color="green"), picture("PNG", color="blue")
    files = {"import.xml": import_xml(), "offers.xml": OFFERS_XML.encode(), CNC: jpeg,
             MILL: png}
    _one, answers = exchange(client, files)
    assert answers[0].startswith("success") and "2 created" in answers[0], answers
    assert "2 pictures, 0 picture errors" in answers[0], answers
    assert answers[1].startswith("success"), answers
    machine, mill = product(db, "CNC-450"), product(db, "F-1")
    assert machine.picture_id and mill.picture_id
    first_picture = machine.picture_id
    # served on the product's page, and named in the API
    auth.login("admin@demo.local")
    got = client.get(f"/products/{machine.id}/picture")
    assert got.status_code == 200 and got.mimetype == "image/jpeg" and got.data == jpeg
    assert client.get(f"/products/{mill.id}/picture").data == png
    card = client.get(f"/products/{machine.id}").get_data(as_text=True)
    assert f"/products/{machine.id}/picture?v={machine.picture_id}" in card
    api = api_for(app, db, demo.admin)
    body = api.get(f"/api/v1/products/{machine.id}").get_json()
    assert body["picture_id"] == machine.picture_id, body
    got = api.get(f"/api/v1/products/{machine.id}/picture")
    assert got.status_code == 200 and got.mimetype == "image/jpeg" and got.data == jpeg
    other = api.get(f"/api/v1/products/{machine.id + 1000}/picture")
    assert other.status_code == 404 and other.is_json
    doc = client.get("/api/v1/openapi.json").get_json()
    ok = doc["paths"]["/api/v1/products/{product_id}/picture"]["get"]["responses"]["200"]
    assert sorted(ok["content"]) == ["image/jpeg", "image/png"]
    assert "picture_id" in doc["components"]["schemas"]["Product"]["properties"]
    # the same exchange again: no new picture row, no event, nothing updated
    before = counts(db)
    _one, answers = exchange(client, files)
    assert "0 created, 0 updated, 2 unchanged" in answers[0], answers
    assert "0 pictures, 0 picture errors" in answers[0], answers
    assert counts(db) == before
    assert product(db, "CNC-450").picture_id == first_picture
    # a changed picture replaces it (one new row, one product.updated)
    red = picture("JPEG", color="red")
    _one, answers = exchange(client, {**files, CNC: red})
    assert "1 updated, 1 unchanged" in answers[0] and "1 pictures" in answers[0], answers
    assert counts(db) == (before[0] + 1, before[1] + 1)
    assert product(db, "CNC-450").picture_id not in (None, first_picture)
    assert client.get(f"/products/{machine.id}/picture").data == red
    assert last_session(db).errors == 0


def test_pictures_uploaded_alone_zip_no(app, db, demo, client, exchange_dir, auth,
                                        monkeypatch) -> None:
    monkeypatch.setitem(app.config, "EXCHANGE_1C_ZIP", False)
    jpeg, png = picture("JPEG", size=(300, 200)), picture("PNG", color="yellow")
    one, answers = exchange(client, {}, init="zip=no", alone={
        "import.xml": import_xml(second=MILL.replace("/", "\\")),  # 1C on Windows
        CNC: jpeg, MILL: png, "offers.xml": OFFERS_XML.encode()})
    assert "2 created" in answers[0] and "2 pictures" in answers[0], answers
    folder = exchange_dir / "1c" / str(last_session(db).id)
    assert (folder / CNC).read_bytes() == jpeg  # kept under its relative path
    machine, mill = product(db, "CNC-450"), product(db, "F-1")
    auth.login("admin@demo.local")
    assert client.get(f"/products/{machine.id}/picture").data == jpeg
    assert client.get(f"/products/{mill.id}/picture").data == png
    db.rollback()
    assert db.get(StoredImage, machine.picture_id).width == 300
    db.rollback()
    # a product without a picture: 404 with the reason, over the API
    api = api_for(app, db, demo.admin)
    body = api.post("/api/v1/products", json={"name": "Без картинки"}).get_json()
    none = api.get(f"/api/v1/products/{body['id']}/picture")
    assert none.status_code == 404 and "has no picture" in none.get_data(as_text=True)


def test_a_bad_picture_leaves_the_product_imported_and_names_it(app, db, demo, client,
                                                                exchange_dir, auth) -> None:
    jpeg = picture("JPEG")
    extra = ("<Товар><Ид>t-3</Ид><Артикул>G-1</Артикул><Наименование>Гайка</Наименование>"
             "<Картинка>import_files/ef/nut.jpg</Картинка></Товар>"
             "<Товар><Ид>t-4</Ид><Артикул>B-1</Артикул><Наименование>Болт</Наименование>"
             "<Картинка>../../etc/passwd</Картинка></Товар>")
    files = {"import.xml": import_xml(extra=extra), "offers.xml": OFFERS_XML.encode(),
             CNC: jpeg[: len(jpeg) // 2],  # truncated
             "import_files/ef/nut.jpg": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}
    # MILL is not sent at all
    _one, answers = exchange(client, files)
    assert answers[0].startswith("success") and "4 created" in answers[0], answers
    assert "0 pictures, 4 picture errors" in answers[0], answers
    for sku in ("CNC-450", "F-1", "G-1", "B-1"):
        assert product(db, sku).picture_id is None, sku
    session = last_session(db)
    assert session.errors == 4
    messages = {e["filename"]: e["message"] for e in errors_of(session)}
    assert messages[CNC] == (f"product 't-1' (Станок ЧПУ): picture '{CNC}': is not a "
                             "readable PNG or JPEG picture"), messages
    assert messages[MILL].startswith(f"product 't-2' (Фреза): picture '{MILL}': no such "
                                     "file was uploaded"), messages
    assert messages["import_files/ef/nut.jpg"].endswith("must be a PNG or JPEG picture")
    assert messages["../../etc/passwd"].startswith("product 't-4' (Болт): picture "
                                                   "'../../etc/passwd': bad file name")
    # the admin page of exchange sessions shows them
    auth.login("admin@demo.local")
    page = client.get("/admin/exchange-1c").get_data(as_text=True)
    assert "product &#39;t-1&#39; (Станок ЧПУ): picture &#39;import_files/ab/cnc-450.jpg" \
        in page, page[:3000]
    assert page.count('class="row-error"') >= 4
    # a good picture in the next exchange is taken
    _one, answers = exchange(client, {**files, CNC: jpeg})
    assert "1 pictures, 3 picture errors" in answers[0], answers
    assert client.get(f"/products/{product(db, 'CNC-450').id}/picture").data == jpeg


def test_unsafe_names_never_write_outside_the_folder(app, db, demo, client, exchange_dir,
                                                     monkeypatch) -> None:
    jpeg = picture("JPEG")
    outside = exchange_dir.parent / f"{exchange_dir.name}-outside"
    bad = {"../evil.jpg": b"x", "../../evil2.jpg": b"x", "import_files/../../../evil3.jpg":
           b"x", str(outside / "evil4.jpg"): b"x", "C:\\evil5.jpg": b"x", "import_files/.hidden": b"x",
           f"../../../{outside.name}/evil6.jpg": b"x"}
    _one, answers = exchange(client, {"import.xml": import_xml(), CNC: jpeg, **bad},
                             xml=("import.xml",))
    assert answers[0].startswith("success") and "1 pictures" in answers[0], answers
    assert not list(exchange_dir.parent.rglob("evil*")), list(exchange_dir.parent.rglob("evil*"))
    assert not outside.exists()
    session = last_session(db)
    refused = [e["message"] for e in errors_of(session) if e["filename"] == "import.zip"]
    assert len(refused) == len(bad), refused
    assert all("bad file name" in m for m in refused), refused
    assert any(m.startswith("'../evil.jpg' in import.zip: bad file name") for m in refused)
    folder = exchange_dir / "1c" / str(session.id)
    kept = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert kept == sorted([CNC, "import.xml", "import.zip"]), kept
    # an upload alone with such a name is refused the same way
    one = OneC(client, "catalog")
    one.checkauth("admin@demo.local")
    one.get("init")
    for name in ("../evil.jpg", "/etc/evil.jpg", "import_files/../../evil.jpg", "a//b.jpg"):
        assert one.send(name, b"x") == [f"failure\nbad file name '{name}'"], name
    assert not list(exchange_dir.parent.rglob("evil*"))
    # unpacking stops at the exchange's file limit (a zip bomb of pictures)
    monkeypatch.setitem(app.config, "EXCHANGE_1C_FILE_LIMIT", 60_000)
    bomb = {"import.xml": import_xml(), CNC: jpeg, "import_files/zz/1.jpg": b"\0" * 40_000,
            "import_files/zz/2.jpg": b"\0" * 40_000}
    _one, answers = exchange(client, bomb, xml=("import.xml",))
    assert answers[0].startswith("success"), answers
    session = last_session(db)
    folder = exchange_dir / "1c" / str(session.id)
    assert (folder / "import_files/zz/1.jpg").exists()
    assert not (folder / "import_files/zz/2.jpg").exists()
    refused = [e["message"] for e in errors_of(session) if e["filename"] == "import.zip"]
    assert refused == ["'import_files/zz/2.jpg' in import.zip: not unpacked: the archive's "
                       "files other than XML come to more than 60000 bytes"], refused


def test_unpack_and_names_without_http(tmp_path: Path) -> None:
    from integrations.imports.commerceml_files import ExchangeError, safe_path, unpack

    assert safe_path("import_files\\ab\\x.jpg") == "import_files/ab/x.jpg"
    for name in ("", "/x.jpg", "../x.jpg", "a/../../x.jpg", "a/./x.jpg", "C:/x.jpg",
                 "a/.x.jpg", "a\0b.jpg", "/".join("a" * 9)):
        try:
            safe_path(name)
        except ExchangeError as exc:
            assert "bad file name" in str(exc)
        else:
            raise AssertionError(f"{name!r} was taken")
    (tmp_path / "x.zip").write_bytes(zipped({"sub/import.xml": b"<a/>", "p/q.png": b"1",
                                             "../up.png": b"2"}))
    out = unpack(tmp_path, "x.zip", limit=100)
    assert out.names == ["sub/import.xml", "p/q.png"]
    assert (tmp_path / "import.xml").read_bytes() == b"<a/>"  # XML at the top, as 1C asks
    assert (tmp_path / "p" / "q.png").read_bytes() == b"1"
    assert len(out.refused) == 1 and not (tmp_path.parent / "up.png").exists()
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    assert unpack(tmp_path, "bad.zip", limit=100).names == []


def test_read_picture_names_what_is_wrong(tmp_path: Path) -> None:
    from integrations.imports.commerceml_files import ExchangeError, read_picture

    (tmp_path / "import_files").mkdir()
    (tmp_path / "import_files" / "big.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 3000)
    (tmp_path / "import_files" / "ok.jpg").write_bytes(b"abc")
    assert read_picture(tmp_path, "import_files\\ok.jpg", max_bytes=2048) == b"abc"
    for name, reason in (("import_files/big.jpg", "must be at most 2 KB (this file is 3 KB)"),
                         ("import_files/none.jpg", "no such file was uploaded"),
                         ("import_files", "no such file was uploaded"),
                         ("../x.jpg", "bad file name '../x.jpg'")):
        try:
            read_picture(tmp_path, name, max_bytes=2048)
        except ExchangeError as exc:
            assert str(exc).startswith(reason), (name, str(exc))
        else:
            raise AssertionError(f"{name} was read")
