"""Invoice PDF benchmark: how long WeasyPrint takes to render a 30-row invoice.

    .venv/bin/python bench/invoice_pdf.py [--rows 30] [--runs 10]

Set-up (not measured): a throw-away SQLite database in a temporary directory, migrated, with
our requisites, a deal with ``--rows`` product rows and an invoice made from it through the
service layer. Measured: ``web.invoice_pdf.invoice_pdf`` (template + WeasyPrint) for the
Russian and the English layout (with our logo, signature and stamp), ``--runs`` times each after one warm-up render (the first
render loads fonts and pango); printed as min / median / max seconds. Target: < 1 s.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app  # noqa: E402
from crm_models.permissions import system_actor  # noqa: E402
from crm_models.services import create_company, create_deal  # noqa: E402
from crm_models.services import invoices as inv_svc  # noqa: E402
from crm_models.services.images import invoice_images, set_requisite_image  # noqa: E402
from crm_models.services.org import create_user  # noqa: E402
from crm_models.services.product_rows import set_product_rows  # noqa: E402
from crm_models.setup import ensure_reference_data  # noqa: E402
from web.database import migrate  # noqa: E402
from web.invoice_pdf import invoice_pdf  # noqa: E402


def _picture(size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", size, (255, 255, 255, 0))
    ImageDraw.Draw(img).ellipse((4, 4, size[0] - 4, size[1] - 4), outline=(20, 40, 160, 255),
                                width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
                          "SECRET_KEY": "bench", "RUN_SCHEDULER": False})
        migrate(app)
        actor = system_actor("bench")
        with app.app_context(), app.extensions["db_sessionmaker"]() as db:
            ensure_reference_data(db)
            user = create_user(db, actor, email="bench@example.com", full_name="Bench",
                               password="bench-pass")
            inv_svc.save_requisites(db, actor, name="ООО «Маршрут»", inn="7701234567",
                                    kpp="770101001", bank="ПАО Сбербанк", bik="044525225",
                                    corr_account="30101810400000000225",
                                    account="40702810938000000001", director="Иванов И. И.",
                                    accountant="Петрова А. А.")
            for kind, size in (("logo", (600, 160)), ("signature", (300, 120)),
                               ("stamp", (400, 400))):
                set_requisite_image(db, actor, kind, _picture(size))
            company = create_company(db, actor, title="ООО «Вектор»", responsible_id=user.id)
            deal = create_deal(db, actor, title="Поставка", company_id=company.id,
                               responsible_id=user.id)
            set_product_rows(db, actor, "deal", deal.id, [
                {"name": f"Позиция каталога номер {i}", "price": f"{i * 1234}.56",
                 "quantity": i % 5 + 1, "vat_rate": ("20", "10", "none")[i % 3],
                 "discount": str(i % 4)} for i in range(1, args.rows + 1)])
            inv = inv_svc.create_invoice(db, actor, deal_id=deal.id, buyer_inn="7712345678")
            db.commit()
            rows = inv_svc.invoice_rows(db, inv.id)
            pics = invoice_images(db, inv.seller)
            with app.test_request_context():
                for layout in ("ru", "en"):
                    size = len(invoice_pdf(inv, rows, layout, pics))  # warm-up
                    times = []
                    for _ in range(args.runs):
                        start = time.perf_counter()
                        invoice_pdf(inv, rows, layout, pics)
                        times.append(time.perf_counter() - start)
                    print(f"{layout}: {args.rows} rows, {size} bytes: min {min(times):.3f} s, "
                          f"median {statistics.median(times):.3f} s, max {max(times):.3f} s "
                          f"over {args.runs} runs")


if __name__ == "__main__":
    main()
