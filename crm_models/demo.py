"""Demo data for ``init-db --demo``: the org chart, ООО «Вектор», a dozen leads and deals, a
small product catalog with rows on the deals, and one invoice."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .org import Department, User
from .permissions import Actor, system_actor
from .services import convert_lead, create_company, create_contact, create_deal, create_lead
from .services.catalog import create_product, save_section
from .services.invoices import create_invoice, save_requisites
from .services.org import create_user, ensure_builtin_roles, grant_role, save_department
from .services.product_rows import set_product_rows
from .setup import ensure_reference_data

DEMO_PASSWORD = "demo"
DEMO_USERS = (
    ("admin@demo.local", "Анна Администраторова", "admin", None),
    ("head@demo.local", "Сергей Руководителев", "sales_head", "sales"),
    ("corporate@demo.local", "Ольга Корпоративная", "manager", "corporate"),
    ("manager1@demo.local", "Иван Менеджеров", "manager", "sales"),
    ("manager2@demo.local", "Мария Продажина", "manager", "sales"),
)


def load_demo(session: Session) -> bool:
    """Load the demo data once; returns False when it is already there."""
    if session.scalars(select(User).where(User.email == "admin@demo.local")).first():
        return False
    ensure_reference_data(session)
    roles = ensure_builtin_roles(session)
    actor = system_actor("demo data")
    sales = save_department(session, actor, name="Отдел продаж")
    corporate = save_department(session, actor, name="Корпоративные клиенты",
                                parent_id=sales.id)
    deps: dict[str | None, Department | None] = {"sales": sales, "corporate": corporate,
                                                 None: None}
    users: dict[str, User] = {}
    for email, name, role, dep in DEMO_USERS:
        d = deps[dep]
        u = create_user(session, actor, email=email, full_name=name, password=DEMO_PASSWORD,
                        department_id=d.id if d else None)
        grant_role(session, actor, roles[role].id, user_id=u.id)
        users[email.split("@")[0]] = u
    users["admin"].locale = "ru"
    save_department(session, actor, sales.id, head_id=users["head"].id)
    save_department(session, actor, corporate.id, head_id=users["corporate"].id)
    m1, m2 = users["manager1"], users["manager2"]

    vector = create_company(session, actor, title="ООО «Вектор»", industry="Производство",
                            phones=[{"value": "+7 495 123-45-67", "value_type": "WORK"}],
                            emails=[{"value": "info@vector.example", "value_type": "WORK"}],
                            responsible_id=users["head"].id)
    petrov = create_contact(session, actor, first_name="Пётр", last_name="Петров",
                            position="Директор по закупкам", company_id=vector.id,
                            phones=[{"value": "+7 916 555-01-02", "value_type": "MOBILE"}],
                            emails=[{"value": "petrov@vector.example"}],
                            responsible_id=users["head"].id)
    romashka = create_company(session, actor, title="АО «Ромашка»", industry="Торговля",
                              responsible_id=m1.id)
    create_company(session, actor, title="ООО «Северный ветер»", industry="Логистика",
                   responsible_id=m2.id, opened=False)

    leads = [
        ("Заявка с сайта: поставка оборудования", "Алексей", "Смирнов", "ООО «Гранит»",
         "WEB", "150000", m1),
        ("Звонок: интеграция CRM", "Елена", "Кузнецова", "", "CALL", "45000", m1),
        ("Выставка: пилотный проект", "Дмитрий", "Попов", "ООО «Сфера»", "TRADE_SHOW",
         "800000", m2),
        ("Рекомендация партнёра", "Ольга", "Васильева", "ИП Васильева", "PARTNER", "60000", m2),
        ("E-mail: запрос КП", "Николай", "Соколов", "ООО «Бета»", "EMAIL", "2300000", m1),
        ("Реклама: консультация", "Татьяна", "Михайлова", "", "ADVERTISING", "", m2),
    ]
    created = []
    for title, first, last, company, source, amount, resp in leads:
        created.append(create_lead(session, actor, title=title, first_name=first, last_name=last,
                                   company_title=company, source=source, amount=amount or None,
                                   phones=[{"value": f"+7 900 000-00-{len(created) + 1:02d}"}],
                                   responsible_id=resp.id))
    convert_lead(session, actor, created[0].id)

    deals = [
        ("Поставка станков", "2500000", "EXECUTING", vector, [petrov], users["head"]),
        ("Сервисный контракт", "320000", "PREPARATION", vector, [petrov], users["head"]),
        ("Оснащение склада", "1750000", "NEW", romashka, [], users["corporate"]),
        ("Лицензии на год", "90000", "NEW", None, [], m1),
        ("Обучение персонала", "45000", "PREPAYMENT_INVOICE", romashka, [], m1),
        ("Пилотный проект", "600000", "EXECUTING", None, [], m2),
        ("Доработка интеграции", "12000", "WON", None, [], m2),
        ("Консалтинг", "250000", "LOSE", None, [], m1),
        ("Расширение лицензий", "1200000", "FINAL_INVOICE", None, [], users["corporate"]),
        ("Тестовый заказ", "10000", "NEW", None, [], m2),
    ]
    made = {}
    for title, amount, stage, company, contacts, resp in deals:
        made[title] = create_deal(session, actor, title=title, amount=amount, stage=stage,
                                  company_id=company.id if company else None,
                                  contact_ids=[c.id for c in contacts], responsible_id=resp.id)
    load_demo_catalog(session, actor, made)
    session.flush()
    return True


#: Section → products: (name, article, price, VAT rate, unit).
DEMO_CATALOG = {
    "Оборудование": (("Станок токарный с ЧПУ", "ST-CNC-16", "1000000", "20", "pcs"),
                     ("Стеллаж складской", "RACK-2000", "25000", "20", "pcs")),
    "Услуги": (("Монтаж и пусконаладка", "SRV-INST", "5000", "20", "hour"),
               ("Сервисное обслуживание", "SRV-CARE", "40000", "20", "month"),
               ("Обучение персонала", "SRV-EDU", "15000", "none", "service")),
    "Программное обеспечение": (("Лицензия «Маршрут CRM», 1 место", "LIC-1", "9000", "none",
                                 "license"),),
}
#: Deal → (product name, quantity): each sums to the deal's demo amount.
DEMO_ROWS = {
    "Поставка станков": (("Станок токарный с ЧПУ", 2), ("Монтаж и пусконаладка", 100)),
    "Сервисный контракт": (("Сервисное обслуживание", 8),),
    "Оснащение склада": (("Стеллаж складской", 70),),
    "Лицензии на год": (("Лицензия «Маршрут CRM», 1 место", 10),),
    "Обучение персонала": (("Обучение персонала", 3),),
}


def load_demo_catalog(session: Session, actor: Actor, deals: dict[str, Any]) -> None:
    """A small catalog (goods, services, software with different VAT rates), product rows on
    the demo deals (their amounts stay as they are: the rows add up to them), our requisites
    and one invoice for ООО «Вектор»."""
    products = {}
    for section_name, items in DEMO_CATALOG.items():
        section = save_section(session, actor, name=section_name)
        for name, sku, price, vat, unit in items:
            products[name] = create_product(session, actor, name=name, sku=sku, price=price,
                                            vat_rate=vat, unit=unit, section_id=section.id)
    for title, rows in DEMO_ROWS.items():
        set_product_rows(session, actor, "deal", deals[title].id,
                         [{"product_id": products[n].id, "quantity": q} for n, q in rows],
                         amount_from_rows=True)
    save_requisites(session, actor, name="ООО «Маршрут»", inn="7707083893", kpp="770701001",
                    ogrn="1027700132195", address="115035, Москва, ул. Садовническая, д. 5",
                    bank="ПАО Сбербанк", bik="044525225", corr_account="30101810400000000225",
                    account="40702810938000012345", director="Администраторова А. А.",
                    accountant="Счётова Е. В.", invoice_prefix="")
    create_invoice(session, actor, deal_id=deals["Поставка станков"].id,
                   buyer_inn="7725123456", buyer_kpp="772501001",
                   due_on=dt.date.today() + dt.timedelta(days=10))
