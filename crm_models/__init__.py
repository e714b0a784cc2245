"""Marshrut CRM core: SQLAlchemy models and the CRM service functions.

Boundary: this package never imports ``flask`` (a test enforces it). Every CRM write goes
through one function in ``crm_models.services``; each checks the actor's rights, validates
with field-level errors, and writes an audit event and an outbox event in the caller's
transaction. Pages, the REST API and BPMN service tasks all call the same functions.
"""

from . import (  # noqa: F401  (register every table)
    activity,
    catalog,
    dedup,
    entities,
    feed,
    images,
    invoices,
    org,
)
from .db import Base

__all__ = ["Base"]
