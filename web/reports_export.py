"""Reports as files: CSV (one file, a titled block per table) and XLSX (a sheet per table,
openpyxl). A table is (title, header, rows); cells are text or numbers."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from flask import Response

Table = tuple[str, Sequence[str], Sequence[Sequence[Any]]]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    # a cell starting with = + - @ would be a formula in a spreadsheet: keep it text
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_bytes(tables: list[Table]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")
    for i, (title, header, rows) in enumerate(tables):
        if i:
            w.writerow([])
        w.writerow([title])
        w.writerow(header)
        w.writerows([[_cell(c) for c in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel reads it as UTF-8


def xlsx_bytes(tables: list[Table]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for title, header, rows in tables:
        name = "".join(c for c in title if c not in "[]:*?/\\")[:31] or "Sheet"
        while name in used:
            name = name[:28] + f"~{len(used)}"
        used.add(name)
        ws = wb.create_sheet(name)
        ws.append(list(header))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([_cell(c) for c in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_response(tables: list[Table], fmt: str, name: str) -> Response:
    if fmt == "xlsx":
        data, mime, ext = xlsx_bytes(tables), XLSX, "xlsx"
    else:
        data, mime, ext = csv_bytes(tables), "text/csv; charset=utf-8", "csv"
    return Response(data, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="{name}.{ext}"'})
