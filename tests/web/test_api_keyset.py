"""Keyset pages of the REST lists: ``next`` of one page, passed as ``after``, gives the page
after it — the same rows, in the same order, as offset pages — for every kind of sort column
(empty values included) and both directions; a bad cursor is refused naming ``after``."""
from __future__ import annotations

import pytest

from ..factories import make_deal
from .api_support import api_for, fast_passwords  # noqa: F401  (an autouse fixture)


@pytest.fixture()
def api(app, db, org):
    amounts = ["100.00", None, "50.00", "100.00", None, "700.00", "50.00"]
    for i, amount in enumerate(amounts):
        make_deal(db, org.m1, title=f"Deal {i % 3}", amount=amount,
                  stage="WON" if i % 2 else "NEW")
    db.commit()
    return api_for(app, db, org.m1)


def walk(api, **query):
    """Every page by cursor: the ids in order, and how many pages it took."""
    ids, pages, after = [], 0, None
    while True:
        args = {**query, "per_page": 3} | ({"after": after} if after else {})
        body = api.get("/api/v1/deals", query_string=args).get_json()
        ids += [d["id"] for d in body["items"]]
        pages += 1
        after = body["next"]
        if after is None:
            return ids, pages
        assert pages < 10


@pytest.mark.parametrize("sort", ["id", "-id", "amount", "-amount", "created_at",
                                  "-created_at", "title", "-title", "stage", "-stage"])
def test_cursor_pages_match_the_whole_list(api, sort):
    whole = api.get("/api/v1/deals", query_string={"sort": sort, "per_page": 500}).get_json()
    assert whole["next"] is None and whole["total"] == 7
    expected = [d["id"] for d in whole["items"]]
    assert walk(api, sort=sort) == (expected, 3)


def test_cursor_pages_keep_the_filters(api):
    won = api.get("/api/v1/deals", query_string={"stage": "WON", "sort": "-amount"}).get_json()
    assert walk(api, stage="WON", sort="-amount")[0] == [d["id"] for d in won["items"]]


def test_a_full_last_page_has_no_next(api):
    body = api.get("/api/v1/deals", query_string={"per_page": 7}).get_json()
    assert len(body["items"]) == 7 and body["next"] is None


@pytest.mark.parametrize("after", ["garbage", "W10", "WyJpZCIsMSwiYSJd", "x" * 401])
def test_a_bad_cursor_names_after(api, after):
    r = api.get("/api/v1/deals", query_string={"after": after})
    assert r.status_code == 422
    assert set(r.get_json()["error"]["fields"]) == {"after"}


def test_a_cursor_of_another_sort_or_with_a_page_is_refused(api):
    cursor = api.get("/api/v1/deals", query_string={"per_page": 2}).get_json()["next"]
    r = api.get("/api/v1/deals", query_string={"after": cursor, "sort": "amount"})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"after"}
    r = api.get("/api/v1/deals", query_string={"after": cursor, "page": 2})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"page"}
