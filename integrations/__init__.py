"""Integrations with the outside world that need no Flask: Bitrix24-compatible incoming
webhooks (their tokens and rate-limit state), outgoing event handlers with their delivery
worker, and the mapping between Bitrix24's field names and ours.

Boundary: like ``crm_models``, this package never imports ``flask`` (a test enforces it); the
HTTP adapter lives in ``web.bitrix``. CRM rows are written only through ``crm_models.services``.
"""
from . import (  # noqa: F401  (register the tables on Base.metadata)
    imports,
    mail_models,
    models,
)
