"""Field validation of every kind in ``fields.py``, and the filters, sorting and search of lists.

Every bad value must give ``ValidationFailed`` naming the field (never a database error), and
a refused call must leave nothing behind.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead
from crm_models.errors import NotFound, ValidationFailed
from crm_models.fields import SCHEMAS
from crm_models.permissions import actor_for
from crm_models.services import (
    add_activity,
    add_comment,
    create_company,
    create_contact,
    create_deal,
    create_lead,
    get_deal,
    list_companies,
    list_contacts,
    list_deals,
    records,
    update_contact,
    update_deal,
    update_lead,
)
from crm_models.services.org import update_user
from tests.factories import SYSTEM, Org, make_company, make_contact, make_deal, make_lead

CREATE = {"lead": create_lead, "deal": create_deal, "contact": create_contact,
          "company": create_company}
REQUIRED = {"lead": {"title": "L"}, "deal": {"title": "D"}, "contact": {"last_name": "C"},
            "company": {"title": "Co"}}
MB = "x" * (1024 * 1024)


def total_rows(db: Session) -> tuple[int, ...]:
    return tuple(db.scalar(select(func.count()).select_from(m)) or 0
                 for m in (Lead, Deal, Contact, Company, OutboxEvent, AuditEvent))


# (entity, field, bad value) — one row per way to be wrong, every field kind covered.
BAD: list[tuple[str, str, Any]] = [
    # string
    ("deal", "title", None), ("deal", "title", ""), ("deal", "title", "   "),
    ("deal", "title", 123), ("deal", "title", True), ("deal", "title", ["a"]),
    ("deal", "title", {"a": 1}), ("deal", "title", "x" * 256), ("deal", "title", MB),
    ("deal", "title", "a\x00b"), ("contact", "first_name", "x" * 101),
    ("company", "address", "x" * 501), ("company", "industry", "\x00"),
    # text
    ("lead", "comments", "x" * 20001), ("lead", "comments", MB), ("lead", "comments", "a\x00"),
    ("lead", "comments", 5),
    # money
    ("deal", "amount", True), ("deal", "amount", False), ("deal", "amount", float("nan")),
    ("deal", "amount", float("inf")), ("deal", "amount", float("-inf")),
    ("deal", "amount", "abc"), ("deal", "amount", "NaN"), ("deal", "amount", "sNaN"),
    ("deal", "amount", "Infinity"), ("deal", "amount", "1e30"), ("deal", "amount", 10**20),
    ("deal", "amount", "1000000000000000"), ("deal", "amount", "-1"), ("deal", "amount", -5),
    ("deal", "amount", "1.001"), ("deal", "amount", [1]), ("deal", "amount", {"v": 1}),
    ("deal", "amount", "1,500.50"), ("lead", "amount", "1e999999999"),
    # currency
    ("deal", "currency", "US"), ("deal", "currency", "USDX"), ("deal", "currency", "руб"),
    ("deal", "currency", 643), ("deal", "currency", ""), ("deal", "currency", None),
    ("lead", "currency", "U1D"),
    # int
    ("deal", "probability", "abc"), ("deal", "probability", 1.5), ("deal", "probability", True),
    ("deal", "probability", -1), ("deal", "probability", 101), ("deal", "probability", 10**30),
    ("deal", "probability", "9" * 40), ("deal", "probability", [50]),
    ("deal", "pipeline_id", -1), ("deal", "pipeline_id", 2**63), ("deal", "pipeline_id", "x"),
    ("deal", "pipeline_id", 2**31),
    # bool
    ("deal", "opened", "maybe"), ("deal", "opened", 2), ("deal", "opened", None),
    ("deal", "opened", ""), ("deal", "opened", []), ("contact", "opened", "да"),
    # date
    ("deal", "close_date", "2024-13-01"), ("deal", "close_date", "2024-02-30"),
    ("deal", "close_date", "yesterday"), ("deal", "close_date", 20240101),
    ("deal", "close_date", "2024-01-01garbage"), ("deal", "close_date", "x" * 100),
    ("deal", "close_date", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    # enum
    ("deal", "source", "SPAM"), ("deal", "source", 1), ("lead", "source", "call"),
    ("lead", "status", "WON"), ("lead", "status", ""), ("lead", "status", None),
    # user
    ("deal", "responsible_id", 999999), ("deal", "responsible_id", "abc"),
    ("deal", "responsible_id", 0), ("deal", "responsible_id", -1),
    ("deal", "responsible_id", True), ("deal", "responsible_id", 10**30),
    ("deal", "responsible_id", None), ("deal", "responsible_id", 1.0),
    ("deal", "responsible_id", 2**31), ("deal", "contact_ids", [2**31]),
    # ref
    ("deal", "company_id", 999999), ("deal", "company_id", "abc"), ("deal", "company_id", 0),
    ("deal", "company_id", True), ("deal", "company_id", [1]),
    ("contact", "company_id", 2**62 + 1), ("contact", "company_id", 2**31),
    # refs
    ("deal", "contact_ids", [999999]), ("deal", "contact_ids", "1,2"),
    ("deal", "contact_ids", [True]), ("deal", "contact_ids", ["abc"]),
    ("deal", "contact_ids", list(range(1, 502))), ("deal", "contact_ids", 5),
    ("deal", "contact_ids", [None]),
    # phones
    ("contact", "phones", ["abc"]), ("contact", "phones", [{"value": "---"}]),
    ("contact", "phones", [{"value": "() . -"}]), ("contact", "phones", [{"value": "12"}]),
    ("contact", "phones", [{"value": "+7 900", "value_type": "PAGER"}]),
    ("contact", "phones", [{"value": 79001234567}]), ("contact", "phones", [{"no": "value"}]),
    ("contact", "phones", [{"value": "1" * 31}]), ("contact", "phones", ["+7 900"] * 51),
    ("contact", "phones", [5]), ("contact", "phones", {"value": "+7 900"}),
    ("contact", "phones", [{"value": "+7 900\x00"}]), ("lead", "phones", "call me"),
    # emails
    ("contact", "emails", ["not-an-email"]), ("contact", "emails", ["a@b"]),
    ("contact", "emails", ["a b@c.ru"]), ("contact", "emails", ["a\x00b@c.ru"]),
    ("contact", "emails", ["a\nb@c.ru"]), ("contact", "emails", ["a@" + "b" * 260 + ".ru"]),
    ("contact", "emails", [{"value": "x@y.ru", "value_type": "MOBILE"}]),
    ("contact", "emails", [{"value": "x@y.ru", "value_type": 1}]),
    ("company", "emails", [["x@y.ru"]]),
    # stage
    ("deal", "stage", "NO_SUCH"), ("deal", "stage", "a\x00"), ("deal", "stage", 5),
    ("deal", "stage", "x" * 51), ("deal", "stage", "won"),
    # unknown and read-only fields
    ("deal", "colour", "red"), ("deal", "search_text", "x"), ("deal", "id", 5),
    ("deal", "created_at", "2020-01-01"), ("deal", "updated_at", "2020-01-01"),
    ("deal", "created_by_id", 1), ("deal", "lead_id", 1), ("lead", "company_id", 1),
    ("lead", "contact_id", 1), ("lead", "deal_id", 1), ("contact", "stage", "NEW"),
    # pipeline
    ("deal", "pipeline_id", 99),
    # ИНН
    ("company", "inn", "12345"), ("company", "inn", "77070838931"), ("company", "inn", "77O7083893"),
    ("company", "inn", True), ("company", "inn", ["7707083893"]), ("company", "inn", "٧٧٠٧٠٨٣٨٩٣"),
]


def test_bad_values_cover_every_field_kind() -> None:
    kinds_tested = {f.kind for e, name, _ in BAD for f in SCHEMAS[e] if f.name == name}
    assert kinds_tested == {f.kind for fields in SCHEMAS.values() for f in fields}


@pytest.mark.parametrize(("entity", "field", "value"), BAD,
                         ids=[f"{e}.{f}-{i}" for i, (e, f, _) in enumerate(BAD)])
def test_bad_value_is_refused_naming_the_field(db: Session, org: Org, entity: str, field: str,
                                               value: Any) -> None:
    admin = actor_for(db, org.admin)
    db.commit()
    before = total_rows(db)
    data = {**REQUIRED[entity], field: value}
    with pytest.raises(ValidationFailed) as info:
        CREATE[entity](db, admin, **data)
    assert field in info.value.fields, info.value.fields
    assert field in info.value.message
    # The same value on an update of an existing record is refused too, and changes nothing.
    make = {"lead": make_lead, "deal": make_deal, "contact": make_contact,
            "company": make_company}[entity]
    record = make(db, org.m1)
    db.commit()
    snapshot = total_rows(db)
    update = {"lead": update_lead, "deal": update_deal, "contact": update_contact,
              "company": records.update}[entity]
    with pytest.raises(ValidationFailed) as info:
        if entity == "company":
            update(db, admin, "company", record.id, {field: value})
        else:
            update(db, admin, record.id, **{field: value})
    assert field in info.value.fields or (field in ("first_name", "last_name")
                                          and "last_name" in info.value.fields)
    db.commit()
    assert total_rows(db) == snapshot
    assert snapshot[:4] != before[:4]  # (sanity: the record was made)


def test_every_bad_field_is_named_at_once(db: Session, org: Org) -> None:
    with pytest.raises(ValidationFailed) as info:
        create_deal(db, SYSTEM, title="", amount="x", currency="1", probability=500,
                    colour="red", responsible_id=org.m1.id)
    assert set(info.value.fields) == {"title", "amount", "currency", "probability", "colour"}
    assert isinstance(info.value.fields["amount"], str) and info.value.fields["amount"]


def test_unknown_field_name_is_cut_in_the_error(db: Session, org: Org) -> None:
    with pytest.raises(ValidationFailed) as info:
        create_company(db, SYSTEM, title="x", responsible_id=org.m1.id, **{"y" * 5000: 1})
    assert all(len(k) <= 60 for k in info.value.fields)


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("amount", "1 500,50", Decimal("1500.50")), ("amount", 0, Decimal("0.00")),
    ("amount", 12.5, Decimal("12.50")), ("amount", Decimal("999999999999999.99"),
                                         Decimal("999999999999999.99")),
    ("amount", "", None), ("amount", None, None),
    ("currency", " usd ", "USD"), ("opened", "N", False), ("opened", " y ", True),
    ("opened", "false", False), ("opened", False, False), ("probability", "50", 50),
    ("probability", 0, 0), ("close_date", "2024-02-29", dt.date(2024, 2, 29)),
    ("close_date", "2024-02-29T23:00:00+03:00", dt.date(2024, 2, 29)),
    ("close_date", dt.date(2030, 1, 1), dt.date(2030, 1, 1)), ("close_date", "", None),
    ("source", "WEBFORM", "WEBFORM"), ("source", "", ""), ("title", "  Trim me  ", "Trim me"),
    ("comments", "Многострочный\nкомментарий", "Многострочный\nкомментарий"),
])
def test_good_values_are_coerced(db: Session, org: Org, field: str, value: Any,
                                 stored: Any) -> None:
    data = {"title": "Deal", field: value}
    deal = create_deal(db, SYSTEM, responsible_id=org.m1.id, **data)
    db.commit()
    db.expire_all()
    assert getattr(db.get(Deal, deal.id), field) == stored


def test_channels_are_normalised(db: Session, org: Org) -> None:
    contact = create_contact(db, SYSTEM, last_name="Channels", responsible_id=org.m1.id,
                             phones="+7 900 000-00-01; +7 (495) 123.45.67",
                             emails=[{"value": " Petrov@Vector.example ", "value_type": "home"}])
    assert contact.phones == [{"value": "+7 900 000-00-01", "value_type": "WORK"},
                              {"value": "+7 (495) 123.45.67", "value_type": "WORK"}]
    assert contact.emails == [{"value": "Petrov@Vector.example", "value_type": "HOME"}]


def test_contact_needs_a_name(db: Session, org: Org) -> None:
    for names in ({}, {"first_name": "  "}, {"first_name": "", "last_name": None}):
        with pytest.raises(ValidationFailed) as info:
            create_contact(db, SYSTEM, responsible_id=org.m1.id, **names)
        assert "last_name" in info.value.fields
    contact = make_contact(db, org.m1, first_name="Anna", last_name="Petrova")
    with pytest.raises(ValidationFailed):
        update_contact(db, SYSTEM, contact.id, first_name="", last_name="  ")
    assert update_contact(db, SYSTEM, contact.id, first_name="").last_name == "Petrova"


def test_inactive_user_cannot_become_responsible(db: Session, org: Org) -> None:
    update_user(db, SYSTEM, org.m2.id, active=False)
    deal = make_deal(db, org.m1)
    with pytest.raises(ValidationFailed) as info:
        update_deal(db, SYSTEM, deal.id, responsible_id=org.m2.id)
    assert "responsible_id" in info.value.fields


@pytest.mark.parametrize("bad_id", ["1", 1.0, True, None, 0, -1, 2**31, 10**30, [1], "abc"])
def test_unusable_record_ids_are_not_found(db: Session, org: Org, bad_id: Any) -> None:
    make_deal(db, org.m1)
    with pytest.raises(NotFound):
        get_deal(db, SYSTEM, bad_id)
    with pytest.raises(NotFound):
        update_deal(db, SYSTEM, bad_id, title="x")
    with pytest.raises(NotFound):
        records.delete(db, SYSTEM, "deal", bad_id)


def test_unknown_entity_type_is_not_found(db: Session, org: Org) -> None:
    for entity in ("invoice", "", ["deal"], None):
        with pytest.raises(NotFound):
            add_comment(db, SYSTEM, entity_type=entity, entity_id=1, text="x")  # type: ignore


@pytest.mark.parametrize(("kw", "field"), [
    ({"type": "fax"}, "type"), ({"subject": ""}, "subject"), ({"subject": "x" * 256}, "subject"),
    ({"description": None}, "description"), ({"due_at": "tomorrow"}, "due_at"),
    ({"due_at": "2030-01-01T10:00:00"}, "due_at"), ({"due_at": 5}, "due_at"),
    ({"due_at": "0001-01-01T00:00:00+01:00"}, "due_at"), ({"responsible_id": 999999},
                                                           "responsible_id"),
    ({"responsible_id": "abc"}, "responsible_id"), ({"responsible_id": 10**30},
                                                    "responsible_id"),
    ({"responsible_id": True}, "responsible_id"),
])
def test_activity_validation(db: Session, org: Org, kw: dict[str, Any], field: str) -> None:
    deal = make_deal(db, org.m1)
    args: dict[str, Any] = {"type": "call", "subject": "Call", **kw}
    with pytest.raises(ValidationFailed) as info:
        add_activity(db, actor_for(db, org.m1), entity_type="deal", entity_id=deal.id, **args)
    assert field in info.value.fields


@pytest.mark.parametrize("text", ["", "   ", None, 5, "x" * 20001])
def test_comment_validation(db: Session, org: Org, text: Any) -> None:
    deal = make_deal(db, org.m1)
    with pytest.raises(ValidationFailed) as info:
        add_comment(db, SYSTEM, entity_type="deal", entity_id=deal.id, text=text)
    assert "text" in info.value.fields


# --- lists: filters, sorting, search ---------------------------------------------------------

@pytest.mark.parametrize(("kw", "key"), [
    ({"filters": {"colour": "red"}}, "colour"),
    ({"filters": {"amount__like": "1"}}, "amount__like"),
    ({"filters": {"amount__gt": "abc"}}, "amount__gt"),
    ({"filters": {"amount__gt": True}}, "amount__gt"),
    ({"filters": {"amount__in": "1,x"}}, "amount__in"),
    ({"filters": {"amount__contains": "1"}}, "amount__contains"),
    ({"filters": {"id__contains": "1"}}, "id__contains"),
    ({"filters": {"id": "abc"}}, "id"),
    ({"filters": {"id": 10**30}}, "id"), ({"filters": {"id__in": [1, 2**31]}}, "id__in"),
    ({"filters": {"company_id": 2**31}}, "company_id"),
    ({"filters": {"close_date": "2024-02-30"}}, "close_date"),
    ({"filters": {"created_at__gt": "yesterday"}}, "created_at__gt"),
    ({"filters": {"created_at__gt": "0001-01-01T00:00:00+01:00"}}, "created_at__gt"),
    ({"filters": {"created_at__contains": "2024"}}, "created_at__contains"),
    ({"filters": {"updated_at__lt": 5}}, "updated_at__lt"),
    ({"filters": {"probability": "many"}}, "probability"),
    ({"filters": {"stage__in": []}}, "stage__in"),
    ({"filters": {"stage": "a\x00"}}, "stage"),
    ({"filters": {"title": "a\x00"}}, "title"),
    ({"filters": {"title__contains": "a\x00"}}, "title__contains"),
    ({"filters": {"title__contains": "x" * 201}}, "title__contains"),
    ({"filters": {"title__contains": 5}}, "title__contains"),
    ({"filters": {"comments__contains": "x"}}, "comments__contains"),
    ({"filters": {"contact_ids": [[1]]}}, "contact_ids"),
    ({"filters": {"contact_ids__gt": 1}}, "contact_ids__gt"),
    ({"filters": {"responsible_id__in": ["1"] * 1001}}, "responsible_id__in"),
    ({"filters": {"opened": "maybe"}}, "opened"),
    ({"sort": "colour"}, "sort"), ({"sort": "-contact_ids"}, "sort"), ({"sort": 5}, "sort"),
    ({"page": 0}, "page"), ({"page": 10**20}, "page"), ({"page": "2"}, "page"),
    ({"per_page": 0}, "per_page"), ({"per_page": 501}, "per_page"),
    ({"search": "x" * 201}, "q"), ({"search": "a\x00b"}, "q"), ({"search": 5}, "q"),
])
def test_bad_list_arguments_name_the_key(db: Session, org: Org, kw: dict[str, Any],
                                         key: str) -> None:
    make_deal(db, org.m1, amount="10")
    with pytest.raises(ValidationFailed) as info:
        list_deals(db, actor_for(db, org.m1), **kw)
    assert key in info.value.fields, info.value.fields


def test_filters_select_the_right_rows(db: Session, org: Org) -> None:
    contact = make_contact(db, org.m1)
    a = make_deal(db, org.m1, title="Alpha", amount="100", probability=10,
                  close_date="2030-01-01", contact_ids=[contact.id])
    b = make_deal(db, org.m1, title="Beta", amount="200.50", stage="WON", source="CALL")
    c = make_deal(db, org.m1, title="Gamma", opened=False)
    m1 = actor_for(db, org.m1)

    def ids(**filters: Any) -> list[int]:
        return sorted(d.id for d in list_deals(db, m1, filters=filters).items)

    assert ids(id=a.id) == [a.id]
    assert ids(id__gt=0) == sorted([a.id, b.id, c.id])
    assert ids(id__in=f"{a.id},{c.id}") == sorted([a.id, c.id])
    assert ids(id__ne=str(a.id)) == sorted([b.id, c.id])
    assert ids(stage="WON") == [b.id]
    assert ids(stage__in=["NEW", "WON"]) == sorted([a.id, b.id, c.id])
    assert ids(stage="NO_SUCH") == []
    assert ids(source="CALL") == [b.id]
    assert ids(opened="N") == [c.id]
    assert ids(probability__gte="10") == [a.id]
    assert ids(close_date__lt="2031-01-01") == [a.id]
    assert ids(contact_ids=contact.id) == [a.id]
    assert ids(contact_ids__in=str(contact.id)) == [a.id]
    assert ids(title__contains="ET") == [b.id]
    assert ids(responsible_id=org.m1.id) == sorted([a.id, b.id, c.id])
    assert ids(created_at__gt="2000-01-01") == sorted([a.id, b.id, c.id])
    assert ids(created_at__gt="2999-01-01T00:00:00+03:00") == []
    assert ids(updated_at__lte=dt.datetime.now(dt.UTC).isoformat()) == sorted([a.id, b.id, c.id])


def test_search_is_case_insensitive_in_cyrillic(db: Session, org: Org) -> None:
    vector = make_company(db, org.m1, title="ООО «Вектор»")
    make_company(db, org.m1, title="АО «Ромашка»")
    petrov = make_contact(db, org.m1, first_name="Пётр", last_name="Петров",
                          phones=[{"value": "+7 916 555-01-02"}],
                          emails=[{"value": "Petrov@Vector.example"}])
    m1 = actor_for(db, org.m1)
    for q in ("вектор", "ВЕКТОР", "Вектор", "«вектор»", "ооо «в"):
        assert [c.id for c in list_companies(db, m1, search=q).items] == [vector.id], q
    for q in ("пётр", "ПЕТРОВ", "petrov@vector", "79165550102", "555-01"):
        assert [c.id for c in list_contacts(db, m1, search=q).items] == [petrov.id], q
    # After a rename the old name no longer finds it.
    records.update(db, m1, "company", vector.id, {"title": "ООО «Стрела»"})
    assert list_companies(db, m1, search="вектор").items == []
    assert [c.id for c in list_companies(db, m1, search="СТРЕЛА").items] == [vector.id]


def test_contains_filter_is_case_insensitive_in_cyrillic(db: Session, org: Org) -> None:
    vector = make_company(db, org.m1, title="ООО «Вектор»")
    make_company(db, org.m1, title="АО «Ромашка»")
    found = list_companies(db, actor_for(db, org.m1), filters={"title__contains": "вЕКТОР"})
    assert [c.id for c in found.items] == [vector.id]


def test_like_wildcards_are_literal(db: Session, org: Org) -> None:
    percent = make_deal(db, org.m1, title="Скидка 100% до пятницы")
    make_deal(db, org.m1, title="Скидка 1000 рублей")
    under = make_deal(db, org.m1, title="file_name")
    make_deal(db, org.m1, title="fileXname")
    slash = make_deal(db, org.m1, title="a/b\\c")
    m1 = actor_for(db, org.m1)
    for q, expected in (("100%", [percent.id]), ("%", [percent.id]), ("e_n", [under.id]),
                        ("_", [under.id]), ("a/b", [slash.id]), ("b\\c", [slash.id])):
        assert [d.id for d in list_deals(db, m1, search=q).items] == expected, q
        assert [d.id for d in list_deals(db, m1, filters={"title__contains": q}).items] == \
            expected, q
