"""The CRM layer's errors. Adapters map them to HTTP (REST), flash messages (pages) or incidents."""
from __future__ import annotations


class CrmError(Exception):
    code = "crm_error"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(CrmError):
    """Input is wrong; ``fields`` maps each faulty field to what is wrong with it."""

    code = "validation_failed"
    status = 422

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        names = ", ".join(sorted(fields))
        super().__init__(message or f"Invalid value in: {names}", fields=fields)


class PermissionDenied(CrmError):
    code = "forbidden"
    status = 403


class LoginLocked(PermissionDenied):
    """Too many failed logins: refused without looking at the password for ``retry_after``
    more seconds."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(CrmError):
    code = "not_found"
    status = 404


class Conflict(CrmError):
    code = "conflict"
    status = 409
