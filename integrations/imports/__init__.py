"""Imports of CRM records from files (CSV, XLSX) and online-store orders.

Boundary: no Flask (as the rest of ``integrations``). Every record is written through
``crm_models.services``, so rights, validation, the audit trail and the outbox events (and
with them the routing rules) are those of a record typed in by hand.
"""
from . import commerceml, models  # noqa: F401  (register the tables on Base.metadata)
