"""The files of a 1C exchange session (CommerceML 2): what 1C uploads with ``mode=file`` —
``import.xml``/``offers.xml``, zip archives of them, and the pictures the products name
(``<Картинка>import_files/ab/abc.jpg</Картинка>``, relative to the exchange folder) — kept in
the session's folder, and read back for the import.

XML and zip files are kept by their bare name at the top of the folder (1C then asks to
``import`` them by that name). Any other file — a picture — keeps its relative path, checked
first: an absolute name, a drive, ``..`` or a hidden part is refused (``ExchangeError`` for an
upload; for an entry of a zip, named in ``Unpacked.refused`` while the rest is unpacked), so
nothing is ever written outside the folder. Sizes: an upload is at most the exchange's file
limit; unpacking writes at most 64 MB per XML file and, for the other files together, at most
that same limit — a zip bomb stops there.
"""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

XML_LIMIT = 64 * 1024 * 1024
MAX_PARTS = 8
READ = 64 * 1024


class ExchangeError(Exception):
    """What ``failure\\n<reason>`` tells 1C."""


def safe_name(filename: str) -> str:
    """A file name 1C sends (``import.xml``, ``import_files/ab/abc.jpg``) made safe to keep."""
    name = filename.replace("\\", "/").split("/")[-1]
    if not name or name.startswith(".") or len(name) > 200:
        raise ExchangeError(f"bad file name '{filename[:60]}'")
    return name


def safe_path(filename: str) -> str:
    """A relative name (``import_files/ab/abc.jpg``, backslashes taken as slashes) that stays
    inside the exchange folder; ExchangeError for an absolute name, a drive, ``..``, an
    empty or hidden part, or one too long."""
    raw = filename.strip().replace("\\", "/")
    parts = raw.split("/")
    if not raw or raw.startswith("/") or len(raw) > 400 or len(parts) > MAX_PARTS or any(
            not p or p.startswith(".") or ":" in p or "\x00" in p or len(p) > 200
            for p in parts):
        raise ExchangeError(f"bad file name '{filename[:60]}'")
    return "/".join(parts)


def stored_name(filename: str) -> str:
    """Where an uploaded file is kept in the folder: XML and zip files by their bare name,
    anything else (pictures) under its checked relative path."""
    if filename.lower().endswith((".xml", ".zip")):
        return safe_name(filename)
    return safe_path(filename)


def _inside(folder: Path, relative: str) -> Path:
    path = folder / relative
    if not path.resolve().is_relative_to(folder.resolve()):  # a symlinked part, say
        raise ExchangeError(f"bad file name '{relative[:60]}'")
    return path


def save_chunk(folder: Path, filename: str, chunks: Iterator[bytes], *, limit: int) -> int:
    """Append an uploaded chunk to the file (a picture under its relative path). The size
    the file has now; ExchangeError past ``limit`` (the file is removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _inside(folder, stored_name(filename))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size if path.exists() else 0
        with path.open("ab") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    fh.close()
                    path.unlink(missing_ok=True)
                    raise ExchangeError(f"the file is larger than {limit} bytes")
                fh.write(chunk)
    except OSError:  # a name whose folder part is already a file, and the like
        raise ExchangeError(f"cannot keep the file '{filename[:60]}'") from None
    return size


@dataclass
class Unpacked:
    #: the archive's entries kept, as named in it
    names: list[str] = field(default_factory=list)
    #: why an entry was not kept ("'../x.jpg': bad file name ..."), one line each
    refused: list[str] = field(default_factory=list)


def unpack(folder: Path, filename: str, *, limit: int) -> Unpacked:
    """Unpack a zip archive in the folder: XML files at the top (by their bare name), other
    files (pictures) under their relative path; an entry with an unsafe name, or past the
    size left of ``limit`` for the non-XML files together, is refused and named."""
    path = folder / safe_name(filename)
    out = Unpacked()
    if not zipfile.is_zipfile(path):
        return out
    left = limit
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            try:
                relative = safe_path(info.filename)
                is_xml = relative.lower().endswith(".xml")
                target = _inside(folder, safe_name(relative) if is_xml else relative)
                cap = XML_LIMIT if is_xml else left
                written = _extract(zf, info, target, cap, truncate=is_xml, limit=limit)
            except ExchangeError as exc:
                out.refused.append(f"'{info.filename[:100]}' in {path.name}: {exc}")
                continue
            except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                out.refused.append(f"'{info.filename[:100]}' in {path.name}: cannot be "
                                   f"unpacked ({type(exc).__name__})")
                continue
            if not is_xml:
                left -= written
            out.names.append(info.filename)
    return out


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int, *,
             truncate: bool, limit: int) -> int:
    """Write the entry, counting the bytes really inflated (the header's size may lie). Past
    ``cap``: an XML file is cut there (its parse then fails, naming it); any other file is
    removed and ExchangeError raised."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with zf.open(info) as src, target.open("wb") as dst:
        while block := src.read(READ):
            if size + len(block) > cap:
                if truncate:
                    dst.write(block[:cap - size])
                    return cap
                dst.close()
                target.unlink(missing_ok=True)
                raise ExchangeError(f"not unpacked: the archive's files other than XML come "
                                    f"to more than {limit} bytes")
            dst.write(block)
            size += len(block)
    return size


def read_picture(folder: Path, name: str, *, max_bytes: int) -> bytes:
    """The bytes of the picture ``name`` (as a product's ``Картинка`` gives it) from the
    exchange folder; ExchangeError saying why not (bad name, not uploaded, too big)."""
    path = _inside(folder, safe_path(name))
    if not path.is_file():
        raise ExchangeError("no such file was uploaded (neither in the archive nor alone)")
    size = path.stat().st_size
    if size > max_bytes:
        raise ExchangeError(f"must be at most {max_bytes // 1024} KB (this file is "
                            f"{-(-size // 1024)} KB)")  # rounded up
    return path.read_bytes()
