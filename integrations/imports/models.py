"""Import jobs (one uploaded file each), their row errors, saved column mappings, and the
store orders already taken in (idempotency)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_models.db import Base, UTCDateTime, utcnow

#: uploaded → (mapping saved) → queued → running → done | failed | cancelled
STATUSES = ("uploaded", "queued", "running", "done", "failed", "cancelled")
POLICIES = ("skip", "update", "create")
IMPORT_ENTITIES = ("lead", "contact", "company", "deal", "product")


class ImportJob(Base):
    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="uploaded")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    filename: Mapped[str] = mapped_column(String(255))
    #: where the uploaded file is kept (under the import directory)
    stored_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(10))  # csv | xlsx
    encoding: Mapped[str] = mapped_column(String(20), default="")
    delimiter: Mapped[str] = mapped_column(String(1), default="")
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: column index (as a string) → field name
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    policy: Mapped[str] = mapped_column(String(10), default="skip")
    #: data rows already processed (committed): where a restarted worker goes on
    position: Mapped[int] = mapped_column(Integer, default=0)
    total_rows: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


class ImportRowError(Base):
    __tablename__ = "import_row_error"
    __table_args__ = (Index("ix_import_row_error_job", "job_id", "row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)  # the file's line (header = 1)
    column: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text)


class ImportMapping(Base):
    """A column mapping saved under a name, offered again for files of the same entity."""

    __tablename__ = "import_mapping"
    __table_args__ = (UniqueConstraint("entity", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    #: header text (case-folded) → field name
    columns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoreOrder(Base):
    """An online-store order taken in: (store, number) once, whatever the retries."""

    __tablename__ = "store_order"
    __table_args__ = (UniqueConstraint("store", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(100))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id",
                                                              ondelete="SET NULL"))
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
