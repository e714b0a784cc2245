"""Schemathesis against ``/api/v1/openapi.json`` through the WSGI app (issue 11, item 6):
every operation, valid and invalid requests generated from the document, authenticated as a
superuser → never a 5xx, and answers that agree with the document (documented status
codes, content types and response schemas).

Bounded for CI (the fuzz tests together stay near 90 s per database on a busy 2-core
machine): ``EXAMPLES`` requests per operation, valid and invalid ones mixed, derandomized
(the same requests on every run), no example database, no shrinking (a failure is reported
as found)."""
from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import superuser_token

#: Generated requests per operation (valid and invalid ones drawn together).
EXAMPLES = 15
#: Operations that would end the session under test rather than exercise the API.
SKIPPED = {("POST", "/api/v1/auth/logout")}
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


#: Path parameters pinned to rows that exist (besides generated ones, which mostly do not).
EXISTING = {"key": ("large_deal_routing", "stale_deal_followup"), "entity_name": ("deal",)}


def _pinned_paths(op: Any, ids: tuple[int, ...] = (1, 2, 3)) -> list[dict[str, Any] | None]:
    """None (every path parameter generated) and, for operations with path parameters,
    the same values for all of them from the seeded rows."""
    names = [p.name for p in op.path_parameters]
    if not names:
        return [None]
    out: list[dict[str, Any] | None] = [None]
    for i in range(len(ids)):
        out.append({n: EXISTING[n][i % len(EXISTING[n])] if n in EXISTING else ids[i]
                    for n in names})
    return out


def fuzz_operation(op: Any, headers: dict[str, str], statuses: dict[int, int]) -> None:
    """``EXAMPLES`` generated requests for one operation, valid and invalid, with its path
    parameters generated or pinned to seeded rows. Raises on the first failing check."""
    strategy = st.one_of(*(op.as_strategy(mode, path_parameters=pinned)
                           for mode in GenerationMode for pinned in _pinned_paths(op)))

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{response.status_code} for {case.as_curl_command()[:600]}: "
            f"{response.text[:300]}")
        case.validate_response(response, checks=[status_code_conformance,
                                                 content_type_conformance,
                                                 response_schema_conformance])

    run()


def test_no_server_errors_and_answers_match_the_document(app, db, seeded):
    ops = _operations(app)
    assert len(ops) > 90
    failures: list[str] = []
    statuses: dict[int, int] = {}
    started = time.monotonic()
    for op in ops:
        if (op.method.upper(), op.path) in SKIPPED:
            continue
        headers = {"Authorization": f"Bearer {superuser_token(db)}"}
        try:
            fuzz_operation(op, headers, statuses)
        # Collect every operation's failure, then report them all (schemathesis reports a
        # check's failures as a FailureGroup, a BaseExceptionGroup).
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    print(f"schemathesis: {sum(statuses.values())} requests over {len(ops)} operations in "
          f"{time.monotonic() - started:.1f} s; statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
