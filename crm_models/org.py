"""Organisation: users, the department tree, roles with the CRM permission matrix, API tokens."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime, utcnow


class Department(Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    head_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL", use_alter=True)
    )

    parent: Mapped[Department | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Department]] = relationship(back_populates="parent")
    head: Mapped[User | None] = relationship(foreign_keys=[head_id])


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(5), default="ru")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="SET NULL")
    )
    out_of_office_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    out_of_office_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Signed-in sessions carry the generation they began in; bumping it (logout, password
    #: change, deactivation, "log out everywhere") ends every one of them at its next request.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: API tokens are marked revoked one by one; incoming webhooks (another package's table)
    #: created before this moment stop working (``integrations.webhooks`` checks it).
    credentials_revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship(foreign_keys=[department_id])
    deputy: Mapped[User | None] = relationship(remote_side=[id], foreign_keys=[deputy_id])

    def is_out_of_office(self, at: dt.datetime) -> bool:
        if self.out_of_office_from is None or self.out_of_office_until is None:
            return False
        return self.out_of_office_from <= at < self.out_of_office_until


class PermLevel(enum.IntEnum):
    """Bitrix24's CRM access levels, ordered: each includes the ones below it."""

    NONE = 0  # ''
    OWN = 1  # A
    DEPARTMENT = 2  # D: own + own department
    SUBDEPARTMENTS = 3  # F: + sub-departments
    OPEN = 4  # O: + every record marked open
    ALL = 5  # X


BITRIX_LEVEL_CODES = {
    PermLevel.NONE: "",
    PermLevel.OWN: "A",
    PermLevel.DEPARTMENT: "D",
    PermLevel.SUBDEPARTMENTS: "F",
    PermLevel.OPEN: "O",
    PermLevel.ALL: "X",
}

ENTITIES = ("lead", "deal", "contact", "company", "product", "invoice")
ACTIONS = ("read", "add", "update", "delete", "export", "import")
#: Rights that are not tied to an entity.
FLAGS = ("manage_settings", "design_processes")


class Role(Base):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(String(50), unique=True)  # built-in roles only
    name: Mapped[str] = mapped_column(String(200))
    manage_settings: Mapped[bool] = mapped_column(Boolean, default=False)
    design_processes: Mapped[bool] = mapped_column(Boolean, default=False)

    permissions: Mapped[list[RolePermission]] = relationship(
        back_populates="role", cascade="all, delete-orphan"
    )
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="role", cascade="all, delete-orphan"
    )

    def level(self, entity: str, action: str) -> PermLevel:
        for p in self.permissions:
            if p.entity == entity and p.action == action:
                return PermLevel(p.level)
        return PermLevel.NONE


class RolePermission(Base):
    __tablename__ = "role_permission"
    __table_args__ = (UniqueConstraint("role_id", "entity", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer, default=0)

    role: Mapped[Role] = relationship(back_populates="permissions")


class RoleGrant(Base):
    """A role given to a user, or to every member of a department."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("role_id", "user_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="CASCADE")
    )

    role: Mapped[Role] = relationship(back_populates="grants")


class ApiToken(Base):
    """A per-user API token; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """Failed logins: the throttle (shared by every app process through the database) and the
    administrators' list of recent failures.

    ``key`` is the client address with the e-mail; ``email`` alone counts failures per account
    from every address. ``cleared`` rows (the same key signed in successfully since) no longer
    count towards the throttle but stay listed until they age out.
    """

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    email: Mapped[str] = mapped_column(String(254), default="", server_default="", index=True)
    address: Mapped[str] = mapped_column(String(64), default="", server_default="")
    cleared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
