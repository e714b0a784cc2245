"""Every message the engine's checks can write reaches a Russian user in Russian.

The messages are read from the engine's source (``engine/validation.py``, ``extensions.py``,
``dmn.py``, ``timers.py``): each string or f-string handed to ``self.error``,
``ValidationError``, ``problems.add`` / ``problems.append``, with every ``{…}`` replaced by a
sample identifier. ``web.editor.engine_messages.translate_message`` must turn each into Russian
with no English word left, so a new English message in the engine fails here until the table
has it.
"""
from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest

from web.editor.engine_messages import translate_message

from ..workspace.russian_text import english_words

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FILES = ("validation.py", "extensions.py", "dmn.py", "timers.py")
SAMPLE = "Xx_1"  # an identifier: the detector leaves it alone, as it does element ids
#: Values a designer writes in the XML as they are (attribute values, hit policy names).
VALUES = {"true", "false", "deputy", "skip", "low", "normal", "high", "COLLECT", "deal", "lead",
          "contact", "company"}


def _constants(tree: ast.Module) -> dict[str, str]:
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name)
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}


def _render(node: ast.AST, constants: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        text = ""
        for v in node.values:
            if isinstance(v, ast.Constant):
                text += v.value
            elif isinstance(v.value, ast.Name) and v.value.id in constants:
                text += constants[v.value.id]
            else:
                text += SAMPLE
        return [text]
    if isinstance(node, ast.IfExp):
        return _render(node.body, constants) + _render(node.orelse, constants)
    if isinstance(node, ast.BinOp):
        return [a + b for a in _render(node.left, constants) for b in _render(node.right, constants)]
    return []


def engine_messages() -> list[tuple[str, str]]:
    found = []
    for name in FILES:
        tree = ast.parse((ENGINE / name).read_text(encoding="utf-8"))
        constants = _constants(tree)
        for n in ast.walk(tree):
            nodes: list[ast.AST] = []
            if isinstance(n, ast.Call):
                f = n.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if called in ("error", "ValidationError", "add") and len(n.args) >= 2:
                    nodes.append(n.args[1])
                elif called == "append" and len(n.args) == 1 and getattr(
                        n.func.value, "id", "") == "problems":  # type: ignore[union-attr]
                    arg = n.args[0]
                    nodes.append(arg.elts[1] if isinstance(arg, ast.Tuple) else arg)
            elif isinstance(n, ast.Assign) and name == "validation.py" and any(
                    getattr(t, "id", "") in ("msg", "message") for t in n.targets):
                nodes.append(n.value)
            for node in nodes:
                for text in _render(node, constants):
                    if text != SAMPLE:  # a message passed on from elsewhere as it is
                        found.append((f"{name}:{n.lineno}", text))
    return found


MESSAGES = engine_messages()


def test_the_source_reader_finds_the_engine_messages():
    texts = {t for _w, t in MESSAGES}
    assert len(MESSAGES) > 100, len(MESSAGES)
    for expected in ("the process has no start event", f"sub-process {SAMPLE} has no end event",
                     f"call activity {SAMPLE} calls its own process",
                     f"decision {SAMPLE}: aggregation {SAMPLE} needs hit policy COLLECT",
                     f"multi-instance {SAMPLE} needs an inputDataItem naming the variable that "
                     "holds the current element (e.g. product)",
                     "user task has no assignment (marshrut:assignment)"):
        assert expected in texts, expected


@pytest.mark.parametrize("where,message", MESSAGES, ids=[w for w, _m in MESSAGES])
def test_each_engine_message_has_a_russian_rendering(app, where, message):
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        from flask_babel import force_locale
        with force_locale("ru"):
            russian = translate_message(message)
    left = english_words(html.escape(russian), allowed=VALUES)
    words = re.sub(SAMPLE, "", message)  # "{what}: {problem}" alone has nothing to translate
    assert (russian != message or not re.search("[A-Za-z]", words)) and not left, f"{where}: {message!r} → {russian!r}: {left}"


def test_an_unknown_message_stays_as_the_engine_wrote_it(app):
    from flask_babel import force_locale
    with app.test_request_context(), force_locale("ru"):
        assert translate_message("something new went wrong") == "something new went wrong"
        assert translate_message("sub-process Sub_1 has no start event") \
            == "у подпроцесса нет начального события"
        assert translate_message("condition of flow F: name 'x' is not defined").startswith(
            "условие:")


class _U:
    def __init__(self, name: str) -> None:
        self.full_name = name


@pytest.mark.parametrize("message,russian", [
    ("v1 started by user 4 on 'deal.created'",
     "версия 1 запущена: Иван Менеджеров, по событию «Сделка: создание»"),
    ("v2 started by the system by the schedule of Timer_1",
     "версия 2 запущена: система, по расписанию «Timer_1»"),
    ("'Связаться с клиентом' assigned to user 4 by responsible rule",
     "«Связаться с клиентом» назначена: Иван Менеджеров, по правилу «ответственный за запись»"),
    ("'Связаться' delegated by user 4 to user 9", "«Связаться» передал(а) Иван Менеджеров "
                                                  "сотруднику пользователь 9"),
    ("took flow Flow_A to Task_B; took flow Flow_C to End_D",
     "переход по потоку Flow_A к Task_B; переход по потоку Flow_C к End_D"),
    ("crm.notify failed after 1 attempt: timeout",
     "операция crm.notify не удалась после 1 попытки: timeout"),
    ("crm.notify failed after 5 attempts: timeout",
     "операция crm.notify не удалась после 5 попыток: timeout"),
    ("sent 'deal.won' to instances 3, 4", "«deal.won» отправлено процессам 3, 4"),
    ("sent 'deal.won' to instance 3", "«deal.won» отправлено процессу 3"),
    ("'Звонок' completed by user 4; instance 2 of 3",
     "«Звонок» выполнил(а) Иван Менеджеров; экземпляр 2 из 3"),
    ("process completed", "процесс завершён"),
    ("something the engine says one day", "something the engine says one day"),
])
def test_history_lines_name_users_and_events_in_russian(app, message, russian):
    from flask_babel import force_locale

    from web.editor.labels import history_line
    with app.test_request_context(), force_locale("ru"):
        assert history_line(message, {4: _U("Иван Менеджеров")}) == russian
