"""Pictures: checked uploads (type, size, dimensions, readable), a product's picture as a
``product.updated``, our logo/signature/stamp for admins only and kept per invoice."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.errors import PermissionDenied, ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import images
from crm_models.services import invoices as inv_svc
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, actor, make_deal


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 20), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def test_uploads_are_checked():
    assert images.check_image(picture(), "picture") == ("image/png", 40, 20)
    assert images.check_image(picture("JPEG"), "logo")[0] == "image/jpeg"
    bad = {
        "gif": picture("GIF"),
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "truncated": picture()[:60],
        "empty": b"",
        "text": "not bytes",
        "huge": b"\x89PNG\r\n\x1a\n" + b"0" * images.MAX_BYTES,
        "wide": picture(size=(images.MAX_SIDE + 1, 1)),
    }
    for name, data in bad.items():
        with pytest.raises(ValidationFailed) as exc:
            images.check_image(data, "picture")
        assert list(exc.value.fields) == ["picture"], name
    with pytest.raises(ValidationFailed) as exc:
        images.check_image(bad["huge"], "picture")
    assert "1024 KB" in exc.value.fields["picture"]


def test_product_picture_is_a_product_update(db, org):
    p = cat.create_product(db, SYSTEM, name="Станок")
    db.commit()
    with pytest.raises(PermissionDenied):
        images.set_product_picture(db, actor(db, org.m1), p.id, picture())
    images.set_product_picture(db, SYSTEM, p.id, picture())
    first = p.picture_id
    assert first and images.get_image(db, first).data == picture()
    images.set_product_picture(db, SYSTEM, p.id, picture(color="blue"))
    assert p.picture_id != first
    images.set_product_picture(db, SYSTEM, p.id, None)
    assert p.picture_id is None
    images.set_product_picture(db, SYSTEM, p.id, None)  # nothing to remove: no event
    with pytest.raises(ValidationFailed):
        images.set_product_picture(db, SYSTEM, p.id, b"GIF89a....")
    db.commit()
    changes = [e.payload["changed"]["picture"] for e in db.scalars(
        select(OutboxEvent).where(OutboxEvent.event_type == "product.updated"))]
    assert [c[1] is None for c in changes] == [False, False, True]
    assert changes[0][0] is None and changes[1][0] == first


def test_requisite_images_and_invoices_keep_theirs(db, org):
    with pytest.raises(PermissionDenied):
        images.set_requisite_image(db, actor(db, org.m1), "logo", picture())
    with pytest.raises(ValidationFailed):
        images.set_requisite_image(db, SYSTEM, "watermark", picture())
    images.set_requisite_image(db, SYSTEM, "signature", picture(color="green"))
    images.set_requisite_image(db, SYSTEM, "stamp", picture("JPEG"))
    deal = make_deal(db, org.m1)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"name": "Работы", "price": "1"}])
    inv = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id)
    db.commit()
    kept = images.invoice_images(db, inv.seller)
    assert set(kept) == {"signature", "stamp"}
    images.set_requisite_image(db, SYSTEM, "signature", picture(color="black"))
    images.set_requisite_image(db, SYSTEM, "stamp", None)
    db.commit()
    again = images.invoice_images(db, inv.seller)
    assert again["signature"].id == kept["signature"].id and "stamp" in again
    newer = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id)
    assert set(images.invoice_images(db, newer.seller)) == {"signature"}


def test_truncated_pictures_are_refused_once_weasyprint_is_loaded():
    """WeasyPrint sets PIL's process-wide LOAD_TRUNCATED_IMAGES when imported (the app imports
    it for invoice PDFs): a cut-off upload must still be refused."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES  # the condition this test is about
    for fmt in ("PNG", "JPEG"):
        whole = picture(fmt, size=(64, 64))
        with pytest.raises(ValidationFailed):
            images.check_image(whole[:len(whole) * 2 // 3], "picture")
        assert images.check_image(whole, "picture")[1:] == (64, 64)


def test_the_same_picture_again_stores_nothing(db, org):
    from sqlalchemy import func

    from crm_models.images import StoredImage

    p = cat.create_product(db, SYSTEM, name="Фреза")
    images.set_product_picture(db, SYSTEM, p.id, picture("JPEG"))
    first = p.picture_id
    rows = db.scalar(select(func.count()).select_from(StoredImage))
    images.set_product_picture(db, SYSTEM, p.id, picture("JPEG"))  # the same bytes
    assert p.picture_id == first
    assert db.scalar(select(func.count()).select_from(StoredImage)) == rows
    # the same size but other bytes is a new picture
    other = bytearray(picture("JPEG"))
    other[-3] ^= 0xFF  # inside the scan data: still a readable JPEG
    assert len(other) == len(picture("JPEG"))
    images.set_product_picture(db, SYSTEM, p.id, bytes(other))
    assert p.picture_id not in (None, first)
    with pytest.raises(PermissionDenied):  # rights are checked before anything is compared
        images.set_product_picture(db, actor(db, org.m1), p.id, bytes(other))
    db.commit()
    events = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "product.updated",
                                                  OutboxEvent.entity_id == p.id)).all()
    assert len(events) == 2
