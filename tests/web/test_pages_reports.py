"""Report pages: tables and chart specs with the hand-calculated figures, filters with errors
naming the field, CSV and XLSX exports under the export right, and each user's own view."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from tests.automation.test_process_analytics import fixed  # noqa: F401 - fixture
from tests.crm.test_sales_reports import sales  # noqa: F401 - fixture

from .pages_support import Browser, field_error, text

FROM = (dt.datetime.now(ZoneInfo("Europe/Moscow")).date() - dt.timedelta(days=40)).isoformat()


def _login(app, auth, user):
    client = app.test_client()
    return Browser(client, type(auth)(client)).login(user)


def _charts(html):
    return [json.loads(c.replace("&#34;", '"').replace("&quot;", '"'))
            for c in re.findall(r"data-chart='([^']*)'", html)]


def test_sales_page_tables_charts_and_exports(app, db, org, client, auth, sales):  # noqa: F811
    b = Browser(client, auth).login(org.admin)
    html = text(b.get(f"/reports/sales?from={FROM}"))
    assert "Воронка" in html and "Лиды по источникам" in html
    charts = _charts(html)
    assert charts[0]["data"]["datasets"][0]["data"] == [5, 4, 3, 3, 2, 2]
    assert 'href="/reports/sales"' in text(b.get("/"))  # the menu link
    r = b.get(f"/reports/sales?from={FROM}&export=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig")), delimiter=";"))
    assert ["Новая", "5", "", "1"] in rows and ["Подготовка документов", "4", "80.0", "0"] in rows
    assert ["Звонок", "3", "1", "33.3"] in rows  # the source by its name, not its code
    r = b.get(f"/reports/sales?from={FROM}&export=xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames[:2] == ["Воронка", "Лиды по источникам"] and len(wb.sheetnames) == 4
    funnel = [list(row) for row in wb["Воронка"].iter_rows(values_only=True)]
    assert funnel[1][:2] == ["Новая", 5] and funnel[2][:3] == ["Подготовка документов", 4, 80.0]
    assert b.get("/reports/sales?export=pdf").status_code == 400


def test_sales_rights_and_filter_errors(app, db, org, client, auth, sales):  # noqa: F811
    m1 = _login(app, auth, org.m1)
    r = m1.get(f"/reports/sales?from={FROM}&export=csv")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig")), delimiter=";"))
    assert ["Новая", "2", "", "0"] in rows  # A and B only
    assert not any(row and row[0] in ("Manager Two", "Outsider") for row in rows)
    observer = _login(app, auth, org.observer)
    assert observer.get("/reports/sales").status_code == 200
    assert observer.get("/reports/sales?export=csv").status_code == 403
    assert observer.get("/reports/processes?export=xlsx").status_code == 403
    r = m1.get("/reports/sales?from=2030-13-01&department_id=x")
    assert r.status_code == 422
    assert field_error(text(r), "from") == "должно быть датой"
    assert field_error(text(r), "department_id") == "должно быть целым числом"


def test_process_page_and_export(app, db, org, client, auth, fixed):  # noqa: F811
    b = Browser(client, auth).login(org.admin)
    html = text(b.get(f"/reports/processes?definition_id={fixed['d1']}"))
    assert "Время по элементам" in html and "Task_call" in html
    r = b.get(f"/reports/processes?definition_id={fixed['d1']}&export=xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    versions = [list(x) for x in wb[wb.sheetnames[0]].iter_rows(values_only=True)]
    assert versions[1] == ["Routing v1", 2, 1, 0, 1.75, 2, 1, 50.0, 1, 1]
    elements = [list(x) for x in wb[wb.sheetnames[-1]].iter_rows(values_only=True)]
    assert elements[1:] == [["Task_call", 1, 3600.0], ["End", 1, 0.0]]
    r = b.get("/reports/processes?definition_id=999999")
    assert r.status_code == 422
    m1 = _login(app, auth, org.m1)
    r = m1.get("/reports/processes?export=csv")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig")), delimiter=";"))
    assert ["Routing v1", "1", "1", "0", "0.5", "1", "0", "0.0", "1", "0"] in rows
    assert not any(row and row[0] in ("Routing v2", "Other v1") for row in rows)
