"""Property tests for the Bitrix24 REST parameters (issues 11 item 6 and 18 item 3): every
method, fed arbitrary Unicode text (every ``Nd``/``No`` digit explicitly in the alphabet),
numbers of any size, and nested dict/list shapes for ``filter``, ``order``, ``select``,
``start``, ``id`` and ``fields`` — as JSON, as PHP-bracket forms and as ``batch`` commands with
query strings and ``$result`` references → never a 5xx, always Bitrix24's envelope.

Bounded for CI: ``EXAMPLES`` per method, derandomized, no example database."""
from __future__ import annotations

import sys
import time
import unicodedata
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from integrations.bitrix_fields import FIELDS
from web.bitrix.registry import METHODS

from ..bitrix.conftest import make_hook

EXAMPLES = 15
BATCH_EXAMPLES = 60
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                             database=None, phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))

#: Every character Unicode classes as a decimal digit (Nd: ١, ߀, 𝟘 …) or another number
#: (No: ², ½, ① …): 2,000-odd, each one a possible draw.
UNICODE_DIGITS = [chr(c) for c in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(c)) in ("Nd", "No")]
CODES = sorted({f.code for fields in FIELDS.values() for f in fields}
               | {"ID", "id", "*", "UF_*", "ENTITY_ID", "ENTITY_TYPE", "OWNER_ID",
                  "OWNER_TYPE_ID", "USER_ID", "UF_DEPARTMENT", "PARENT", "NAME", "SORT"})
PREFIXES = ("", ">", ">=", "<", "<=", "!", "!=", "@", "!@", "%", "=", "=%", "!%")

digit_text = st.text(st.one_of(st.sampled_from(UNICODE_DIGITS), st.sampled_from("0123456789+-. ")),
                     min_size=1, max_size=12)
form_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
any_text = st.one_of(form_text, st.text(max_size=20), digit_text)  # JSON may carry surrogates
number = st.one_of(st.integers(), st.integers(-2, 2**31 + 2), st.floats(allow_nan=False),
                   st.just(2**63), st.just(-(2**70)))
key = st.one_of(st.builds(lambda p, c: p + c, st.sampled_from(PREFIXES), st.sampled_from(CODES)),
                digit_text, form_text)


def values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalar = st.one_of(text, number, st.booleans(), st.none(),
                       st.sampled_from(["ASC", "DESC", "Y", "N", "-1", "0", "1", "2"]))
    return st.recursive(scalar, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=4)), max_leaves=12)


def params(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    v = values(text)
    names = ("filter", "order", "select", "start", "id", "fields", "sort", "entityTypeId",
             "TASK_ID", "TEMPLATE_ID", "DOCUMENT_ID", "STATUS", "PARAMETERS", "FILTER",
             "ORDER", "ID", "START", "params", "halt")
    return st.dictionaries(st.one_of(st.sampled_from(names), key), v, max_size=6)


def php_pairs(name: str, value: Any) -> list[tuple[str, str]]:
    """``name`` and ``value`` as PHP form fields (``filter[>ID]=5``, ``select[]=…``)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in php_pairs(f"{name}[{k}]", v)] or \
            [(name, "")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value)
                for p in php_pairs(f"{name}[{i if i % 2 else ''}]", v)] or [(name, "")]
    if value is None:
        return [(name, "")]
    return [(name, str(value))]


def form_of(p: dict[str, Any]) -> list[tuple[str, str]]:
    return [pair for k, v in p.items() for pair in php_pairs(str(k), v)]


@pytest.fixture()
def call(app, db, seeded, monkeypatch):
    """``call(method, json=… | form=… | query=…)`` → (status, body), checking the envelope."""
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 10**9)
    hook = make_hook(db, seeded.admin)
    client = app.test_client()
    statuses: dict[int, int] = {}

    def do(method: str, *, json: Any = None, form: Any = None, query: str = "") -> Any:
        url = hook.path + quote(method, safe=".") + (f"?{query}" if query else "")
        if form is not None:
            r = client.post(url, data=MultiDict(form))
        else:
            r = client.post(url, json=json)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (method, json, form, query, r.get_data(as_text=True)[:500])
        assert r.mimetype == "application/json", r.get_data(as_text=True)[:200]
        body = r.get_json()
        if r.status_code >= 400:
            assert set(body) == {"error", "error_description"}, body
        else:
            assert "result" in body and "time" in body, body
        return r.status_code, body

    do.statuses = statuses  # type: ignore[attr-defined]
    return do


def fuzz_method(call: Any, method: str) -> None:
    """``EXAMPLES`` generated calls of one method, each as JSON, a form or a query string."""
    @PROPERTY_SETTINGS
    @given(p=params(any_text), f=params(form_text), how=st.sampled_from(["json", "form",
                                                                         "query"]))
    def run(p: dict[str, Any], f: dict[str, Any], how: str) -> None:
        if how == "json":
            call(method, json=p)
        elif how == "form":
            call(method, form=form_of(f))
        else:
            call(method, query=urlencode(form_of(f)))

    run()


def test_every_method_survives_arbitrary_parameters(call):
    started = time.monotonic()
    for method in sorted(METHODS):
        if method != "batch":  # below, with commands
            fuzz_method(call, method)
    print(f"/rest properties: {sum(call.statuses.values())} calls in "
          f"{time.monotonic() - started:.1f} s; statuses {dict(sorted(call.statuses.items()))}")


def command(labels: list[str]) -> st.SearchStrategy[str]:
    ref = st.builds(lambda label, idx, field: f"$result[{label}]{idx}[{field}]",
                    st.sampled_from(labels), st.sampled_from(["", "[0]", "[١]", "[²]", "[99]"]),
                    st.sampled_from(["ID", "id", "²", ""]))
    query = st.builds(lambda p, r: urlencode(form_of({**p, "id": r}) if r else form_of(p)),
                      params(form_text), st.one_of(st.none(), ref))
    return st.one_of(
        st.builds(lambda m, q: f"{m}?{q}", st.sampled_from(sorted(METHODS)), query),
        st.builds(lambda m, q: f"{m}?{quote(q, safe='=&')}", st.sampled_from(sorted(METHODS)),
                  query),
        form_text)


@st.composite
def batches(draw: Any) -> dict[str, Any]:
    labels = draw(st.lists(st.one_of(st.sampled_from(["a", "b", "c0"]), digit_text),
                           min_size=1, max_size=5, unique=True))
    cmds = {label: draw(command(labels)) for label in labels}
    halt = draw(st.sampled_from([0, 1, "Y", "²", None]))
    return {"halt": halt, "cmd": cmds if draw(st.booleans()) else list(cmds.values())}


def test_batch_survives_arbitrary_commands(call):
    @settings(PROPERTY_SETTINGS, max_examples=BATCH_EXAMPLES)
    @given(b=batches(), as_form=st.booleans())
    def run(b: dict[str, Any], as_form: bool) -> None:
        status, body = call("batch", form=form_of(b)) if as_form else call("batch", json=b)
        if status == 200:
            assert set(body["result"]) == {"result", "result_error", "result_total",
                                           "result_next", "result_time"}, body

    run()
