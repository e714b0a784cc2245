"""Reading an uploaded table a row at a time: CSV (UTF-8, UTF-8 with BOM or Windows-1251, as
Excel in Russia saves it; ``;``, ``,`` or tab between values) and XLSX.

Nothing reads the whole file into memory: CSV is decoded as it is read, XLSX is opened in
openpyxl's read-only (streaming) mode. Bad files raise :class:`FileProblem` with a message
naming the row where it could, never a traceback.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

SNIFF_BYTES = 64 * 1024
MAX_COLUMNS = 200
MAX_CELL = 20_000
csv.field_size_limit(MAX_CELL * 5)


class FileProblem(Exception):
    """The file cannot be read (from ``row`` on, when known)."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


@dataclass(frozen=True)
class TableFormat:
    file_format: str  # csv | xlsx
    encoding: str = ""  # csv: utf-8-sig | utf-8 | cp1251
    delimiter: str = ""  # csv: ; , or \t


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when the bytes decode as UTF-8, else ``cp1251``
    (the one 8-bit encoding a Russian spreadsheet is saved in; every byte decodes)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def detect_delimiter(first_line: str) -> str:
    """The separator the header line uses most, outside quotes."""
    counts = {";": 0, ",": 0, "\t": 0}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else ","


def detect(path: Path) -> TableFormat:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise FileProblem("the file is empty")
    if head.startswith(b"PK\x03\x04"):
        return TableFormat("xlsx")
    if b"\x00" in head:
        raise FileProblem("this is neither a CSV nor an XLSX file")
    encoding = detect_encoding(head)
    text = head.decode(encoding, errors="ignore")
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return TableFormat("csv", encoding, detect_delimiter(first_line))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


def rows(path: Path, fmt: TableFormat) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every row, the header first (row 1); blank rows are skipped."""
    if fmt.file_format == "xlsx":
        yield from _xlsx_rows(path)
    else:
        yield from _csv_rows(path, fmt)


def _decoded_lines(fh: Any, encoding: str) -> Iterator[str]:
    """The file's lines as text, decoded one line at a time so that a byte the encoding
    cannot read is reported at its own line."""
    line_no = 0
    for raw in fh:
        line_no += 1
        try:
            yield raw.decode("utf-8-sig" if line_no == 1 and encoding == "utf-8-sig"
                             else encoding)
        except UnicodeDecodeError:
            raise FileProblem(f"line {line_no} is not valid {encoding} text "
                              "(save the file as UTF-8 or Windows-1251)") from None


def _csv_rows(path: Path, fmt: TableFormat) -> Iterator[tuple[int, list[str]]]:
    number = 0
    with path.open("rb") as fh:
        reader = csv.reader(_decoded_lines(fh, fmt.encoding or "utf-8"),
                            delimiter=fmt.delimiter or ",")
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except FileProblem as exc:
                raise FileProblem(exc.message, row=number + 1) from None
            except csv.Error as exc:
                raise FileProblem(f"broken CSV: {exc}", row=number + 1) from None
            number += 1
            if len(cells) > MAX_COLUMNS:
                raise FileProblem(f"more than {MAX_COLUMNS} columns", row=number)
            if any(c.strip() for c in cells):
                yield number, [c.strip() for c in cells]


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileProblem(f"this is not a readable XLSX file ({type(exc).__name__})") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise FileProblem("the workbook has no sheet")
        number = 0
        it = ws.iter_rows(values_only=True)
        while True:
            try:
                values = next(it)
            except StopIteration:
                return
            except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
                raise FileProblem(f"the XLSX file is damaged ({type(exc).__name__})",
                                  row=number + 1) from None
            number += 1
            cells = [_cell(v) for v in values[:MAX_COLUMNS]]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                yield number, cells
    finally:
        wb.close()


def header_and_sample(path: Path, fmt: TableFormat, sample: int = 5
                      ) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header cells and the first ``sample`` data rows (the mapping page's preview)."""
    it = rows(path, fmt)
    try:
        first = next(it, None)
        if first is None:
            raise FileProblem("the file has no rows")
        header = first[1]
        if not any(header):
            raise FileProblem("the first row (the column names) is empty", row=first[0])
        out = []
        for item in it:
            out.append(item)
            if len(out) >= sample:
                break
        return header, out
    finally:
        it.close()  # type: ignore[attr-defined]


def count_rows(path: Path, fmt: TableFormat) -> int:
    """Data rows (without the header), for the progress bar; reads the file once."""
    return max(sum(1 for _ in rows(path, fmt)) - 1, 0)
