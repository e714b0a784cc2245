"""Pictures: a product's picture (product update right) and our logo, signature and stamp
("manage CRM settings"). Uploads are checked — PNG or JPEG, at most ``MAX_BYTES`` and
``MAX_SIDE`` pixels a side, really decodable — and refused with the field named.

Every change writes an audit event; a product's picture is a ``product.updated`` (with the
change ``picture``) like any other product change. Old rows stay: an invoice made earlier
keeps pointing at the signature it was made with.
"""
from __future__ import annotations

import hashlib
import io
from typing import Any

from sqlalchemy.orm import Session

from ..catalog import Product
from ..db import utcnow
from ..errors import NotFound, ValidationFailed
from ..images import StoredImage
from ..invoices import IMAGE_KINDS, OurCompany
from ..permissions import Actor
from ..serialize import json_value
from . import catalog as cat
from .records import record_event

MAX_BYTES = 1024 * 1024
MAX_SIDE = 4000
TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}


def check_image(data: Any, field: str) -> tuple[str, int, int]:
    """(content type, width, height) of an acceptable upload, else ``ValidationFailed``."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValidationFailed({field: "choose a PNG or JPEG file"})
    if len(data) > MAX_BYTES:
        raise ValidationFailed({field: f"must be at most {MAX_BYTES // 1024} KB "
                                       f"(this file is {len(data) // 1024} KB)"})
    if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
        raise ValidationFailed({field: "must be a PNG or JPEG picture"})
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            kind, (width, height) = img.format, img.size
            if kind not in TYPES:
                raise ValidationFailed({field: "must be a PNG or JPEG picture"})
            if width > MAX_SIDE or height > MAX_SIDE:
                raise ValidationFailed({field: f"must be at most {MAX_SIDE}×{MAX_SIDE} "
                                               f"pixels (this one is {width}×{height})"})
            img.load()  # decodes it: a corrupt file fails here
        # A truncated file must fail too, but WeasyPrint sets PIL's process-wide
        # LOAD_TRUNCATED_IMAGES on import, and load() then pads it: check the ending ourselves.
        if kind == "PNG":
            with Image.open(io.BytesIO(data)) as again:
                again.verify()  # walks every chunk to IEND, checking their CRCs
        elif not bytes(data).rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise OSError("JPEG without its end marker")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError):
        raise ValidationFailed({field: "is not a readable PNG or JPEG picture"}) from None
    return TYPES[kind], width, height


def store_image(session: Session, data: Any, *, purpose: str, field: str) -> StoredImage:
    content_type, width, height = check_image(data, field)
    image = StoredImage(purpose=purpose, content_type=content_type, width=width,
                        height=height, size=len(data), data=bytes(data))
    session.add(image)
    session.flush()
    return image


def get_image(session: Session, image_id: Any) -> StoredImage:
    image = session.get(StoredImage, image_id) if isinstance(image_id, int) else None
    if image is None:
        raise NotFound(f"No picture with id {str(image_id)[:20]}")
    return image


def same_as_stored(session: Session, image_id: int | None, data: Any) -> bool:
    """Whether ``data`` is byte for byte the stored picture ``image_id`` (the size is
    compared first, so a different file is told apart without loading the stored bytes)."""
    if image_id is None or not isinstance(data, (bytes, bytearray)):
        return False
    image = session.get(StoredImage, image_id)
    if image is None or image.size != len(data):
        return False
    return hashlib.sha256(image.data).digest() == hashlib.sha256(bytes(data)).digest()


def set_product_picture(session: Session, actor: Actor, product_id: int,
                        data: bytes | None) -> Product:
    """Put (``data``) or remove (None) a product's picture; ``product.updated``. The same
    bytes as the current picture (a repeated 1C exchange, the same file uploaded again)
    change nothing: no new row, no event."""
    actor.require("product", "update")
    product = cat.get_product(session, actor, product_id)
    if data is not None and same_as_stored(session, product.picture_id, data):
        return product
    new_id = store_image(session, data, purpose="picture", field="picture").id \
        if data is not None else None
    if new_id == product.picture_id:
        return product
    changes = {"picture": [product.picture_id, new_id]}
    product.picture_id = new_id
    product.updated_at = utcnow()
    session.flush()
    fields = cat.product_dict(product)
    fields["updated_at"] = json_value(product.updated_at)
    record_event(session, actor, entity="product", entity_id=product.id, action="updated",
                 event_type="product.updated", changes=changes,
                 payload={"changed": changes, "fields": fields})
    return product


def set_requisite_image(session: Session, actor: Actor, kind: str,
                        data: bytes | None) -> OurCompany:
    """Put or remove our logo, signature or stamp (needs "manage CRM settings")."""
    actor.require_flag("manage_settings")
    if kind not in IMAGE_KINDS:
        raise ValidationFailed({str(kind)[:40]: "must be one of: " + ", ".join(IMAGE_KINDS)})
    from .invoices import our_company

    company = our_company(session)
    if company not in session:
        session.add(company)
    new_id = store_image(session, data, purpose=kind, field=kind).id \
        if data is not None else None
    old = getattr(company, f"{kind}_id")
    setattr(company, f"{kind}_id", new_id)
    company.updated_at = utcnow()
    session.flush()
    if old != new_id:
        record_event(session, actor, entity="our_company", entity_id=1, action="updated",
                     event_type=None, changes={kind: [old, new_id]})
    return company


def invoice_images(session: Session, seller: dict[str, Any]) -> dict[str, StoredImage]:
    """The pictures an invoice was made with (its copy of our requisites): kind → image."""
    out: dict[str, StoredImage] = {}
    for kind in IMAGE_KINDS:
        image_id = seller.get(f"{kind}_id")
        image = session.get(StoredImage, image_id) if isinstance(image_id, int) else None
        if image is not None:
            out[kind] = image
    return out
