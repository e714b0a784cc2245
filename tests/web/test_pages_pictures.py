"""Pictures on pages: a product's picture uploaded with its form and shown on its card; our
logo, signature and stamp on the requisites page, drawn on the invoice PDF."""
from __future__ import annotations

import io
import re
import subprocess

from sqlalchemy import select

from crm_models.catalog import Product
from crm_models.services.product_rows import set_product_rows
from tests.crm.test_images import picture
from tests.factories import SYSTEM, make_deal

from .pages_support import Browser, field_error, fresh, text


def upload(data: bytes, name: str = "x.png"):
    return (io.BytesIO(data), name)


def test_product_picture_through_the_form(app, db, org, client, auth):
    b = Browser(client, auth).login(org.admin)
    r = b.post("/products/new", {"name": "Станок", "price": "10",
                                 "picture": upload(b"GIF89a-not-allowed", "a.gif")},
               content_type="multipart/form-data")
    assert r.status_code == 422
    assert field_error(text(r), "picture") == "должен быть изображением PNG или JPEG"
    assert fresh(db).scalars(select(Product)).first() is None
    r = b.post("/products/new", {"name": "Станок", "price": "10", "picture": upload(picture())},
               content_type="multipart/form-data")
    assert r.status_code == 302, text(r)[:1500]
    pid = int(re.search(r"/products/(\d+)$", r.headers["Location"]).group(1))
    html = text(b.get(f"/products/{pid}"))
    assert f"/products/{pid}/picture" in html
    got = b.get(f"/products/{pid}/picture")
    assert got.status_code == 200 and got.mimetype == "image/png" and got.data == picture()
    r = b.post(f"/products/{pid}/edit", {"name": "Станок", "price": "10",
                                         "remove_picture": "1"},
               content_type="multipart/form-data")
    assert r.status_code == 302
    assert b.get(f"/products/{pid}/picture").status_code == 404
    # a manager without product rights sees the product but cannot change its picture
    second = app.test_client()
    m = Browser(second, type(auth)(second)).login(org.m1)
    assert m.get(f"/products/{pid}/picture").status_code == 404  # none now
    r = m.post(f"/products/{pid}/edit", {"name": "Станок", "picture": upload(picture())},
               content_type="multipart/form-data")
    assert r.status_code == 403
    assert fresh(db).get(Product, pid).picture_id is None


def test_requisite_images_on_the_page_and_in_the_pdf(app, db, org, client, auth):
    deal = make_deal(db, org.admin)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"name": "Работы", "price": "100"}])
    db.commit()
    b = Browser(client, auth).login(org.admin)
    form = {"name": "ООО «Маршрут»", "inn": "7701234567"}
    r = b.post("/admin/requisites", {**form, "logo": upload(b"\x89PNG\r\n\x1a\nbroken")},
               content_type="multipart/form-data")
    assert r.status_code == 422
    assert field_error(text(r), "logo") == "не читается как изображение PNG или JPEG"
    r = b.post("/admin/requisites", {**form, "logo": upload(picture(size=(300, 80))),
                                     "signature": upload(picture("JPEG"), "s.jpg"),
                                     "stamp": upload(picture(color="blue"))},
               content_type="multipart/form-data")
    assert r.status_code == 302, text(r)[:1500]
    html = text(b.get("/admin/requisites"))
    for kind in ("logo", "signature", "stamp"):
        assert f"/admin/requisites/{kind}" in html
        assert b.get(f"/admin/requisites/{kind}").status_code == 200
    r = b.post(f"/deals/{deal.id}/invoice", {"issued_on": "2030-01-01"})
    assert r.status_code == 302
    inv_id = int(re.search(r"/invoices/(\d+)$", r.headers["Location"]).group(1))
    for lang in ("ru", "en"):
        pdf = b.get(f"/invoices/{inv_id}/pdf?lang={lang}").data
        listing = subprocess.run(["pdfimages", "-list", "-"], input=pdf, capture_output=True,
                                 check=True).stdout.decode()
        sizes = {tuple(line.split()[3:5]) for line in listing.splitlines()[2:]}
        assert {("300", "80"), ("40", "20")} <= sizes, listing
        assert len(listing.splitlines()[2:]) >= 3, listing
    # managers do not see our pictures' settings
    second = app.test_client()
    m = Browser(second, type(auth)(second)).login(org.m1)
    assert m.get("/admin/requisites/logo").status_code == 403
