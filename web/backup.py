"""``flask backup`` / ``flask restore``: a consistent copy of either database.

SQLite: Python's online backup API copies a consistent snapshot page by page while writers
go on (WAL); restore copies the file back the same way. PostgreSQL: ``pg_dump --format=custom``
and ``pg_restore --clean --if-exists`` (Debian's postgresql-client), reached with the URL's
own host, port, user and database.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    pass


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    args = ["--host", u.host or "localhost", "--port", str(u.port or 5432),
            "--username", u.username or "postgres", "--dbname", u.database or ""]
    return args, env


def backup(url: str, dest: Path) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        src = sqlite3.connect(u.database or "")
        try:
            out = sqlite3.connect(dest)
            with out:
                src.backup(out)
            out.close()
        finally:
            src.close()
        return
    args, env = _pg_args(url)
    done = subprocess.run(["pg_dump", "--format=custom", "--file", str(dest), *args],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")


def restore(url: str, src: Path) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        source = sqlite3.connect(src)
        try:
            target = sqlite3.connect(u.database or "")
            with target:
                source.backup(target)
            target.close()
        finally:
            source.close()
        return
    args, env = _pg_args(url)
    done = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", *args,
                           str(src)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
