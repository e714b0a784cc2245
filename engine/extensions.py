"""Marshrut's BPMN extension — the reference for what the editor writes and the engine reads.

Namespace ``http://marshrut.dev/schema/bpmn/1.0`` (``engine.ports.MARSHRUT_NS``), prefix
``marshrut``. Everything else is standard BPMN 2.0 / DMN 1.3::

  <bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                    xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0">
    <bpmn:message id="Msg_deal" name="deal.created"/>            <!-- CRM event name -->
    <bpmn:process id="deal_approval" name="Deal approval" isExecutable="true"
                  marshrut:priority="10">                         <!-- lower runs first; 100 -->
      <bpmn:extensionElements>                                    <!-- named values → data -->
        <marshrut:variable name="threshold" type="decimal" value="1000000"/>
      </bpmn:extensionElements>
      <bpmn:startEvent id="Start">                                <!-- message start = trigger -->
        <bpmn:messageEventDefinition messageRef="Msg_deal"/>      <!-- none start = manual -->
      </bpmn:startEvent>
      <bpmn:sequenceFlow id="Flow_big" sourceRef="Gw" targetRef="Approve">
        <bpmn:conditionExpression>deal.amount &gt; threshold</bpmn:conditionExpression>
      </bpmn:sequenceFlow>
      <bpmn:userTask id="Approve" name="Approve the deal"
                     marshrut:assignment="department_head" marshrut:assignee="Sales"
                     marshrut:outOfOffice="deputy" marshrut:due="PT2H" marshrut:priority="high">
        <bpmn:extensionElements>
          <marshrut:instructions>Check {{deal.title}} for {{deal.amount}}</marshrut:instructions>
          <marshrut:formField name="comment" type="text" label="Comment" required="false"/>
          <marshrut:formField name="decision" type="buttons" label="Decision">
            <marshrut:option value="approve" label="Approve"/>
            <marshrut:option value="reject" label="Reject"/>
          </marshrut:formField>
        </bpmn:extensionElements>
      </bpmn:userTask>
      <bpmn:serviceTask id="Assign" marshrut:operation="crm.assign_responsible">
        <bpmn:extensionElements>
          <marshrut:parameter name="user" value="corporate@demo.local"/>    <!-- literal -->
          <marshrut:parameter name="deal" expression="deal.id"/>            <!-- sandboxed -->
        </bpmn:extensionElements>
      </bpmn:serviceTask>
      <bpmn:businessRuleTask id="Route" marshrut:decision="routing"/>       <!-- DMN decision id -->
      <bpmn:scriptTask id="Calc"><bpmn:script>total = decimal(deal.amount) * 2</bpmn:script>
      </bpmn:scriptTask>
      <bpmn:boundaryEvent id="Sla" attachedToRef="Approve" cancelActivity="true"
                          marshrut:businessHours="true">           <!-- working hours -->
        <bpmn:timerEventDefinition><bpmn:timeDuration>PT2H</bpmn:timeDuration>
        </bpmn:timerEventDefinition>
      </bpmn:boundaryEvent>
      <bpmn:intermediateCatchEvent id="Wait">                      <!-- or timeDate -->
        <bpmn:timerEventDefinition><bpmn:timeDuration>P3D</bpmn:timeDuration>
        </bpmn:timerEventDefinition>
      </bpmn:intermediateCatchEvent>
      <bpmn:startEvent id="Mornings" marshrut:timezone="Europe/Moscow">  <!-- scheduled -->
        <bpmn:extensionElements>
          <marshrut:select entity="deal" idleDays="7" openOnly="true">  <!-- one per record -->
            <marshrut:filter name="stage__in" value="NEW,PREPARATION"/>
          </marshrut:select>
        </bpmn:extensionElements>
        <bpmn:timerEventDefinition><bpmn:timeCycle>0 9 * * 1-5</bpmn:timeCycle>
        </bpmn:timerEventDefinition>                               <!-- or R/2026-01-05T09:00/P1D -->
      </bpmn:startEvent>
    </bpmn:process>
  </bpmn:definitions>

Semantics:

* ``marshrut:assignment``: user | role | department_head | responsible_department_head |
  responsible | round_robin | least_loaded; ``marshrut:assignee`` names the user (e-mail or id),
  role code or department; it is required except for responsible and
  responsible_department_head. ``marshrut:outOfOffice``: deputy (default) | skip.
* ``marshrut:due``: ISO 8601 duration (``PT2H``, ``P1DT4H``, ``P2W``) from the task's creation.
* ``marshrut:priority`` on a user task: low | normal (default) | high, stored as 3 / 2 / 1 so
  that, as for process priorities, lower sorts first.
* form field types: string, text, decimal, integer, boolean, date, enum, buttons; enum and
  buttons need ``marshrut:option`` children; a buttons field is always required. Submitted
  values land in the task data under the field names (and nothing else does).
* ``marshrut:variable`` types: string, integer, decimal (kept as a decimal string), boolean,
  date (ISO text), json. Variables are put into the data at start and win over start data with
  the same name, so entity data cannot override a process constant. An optional ``label`` is
  for people only (the editor's condition builder, the version diff).
* Timers (``engine.timers``): ``bpmn:timeDuration`` (ISO 8601: ``PT2H``, ``P3D``, ``P1W``) and
  ``bpmn:timeDate`` (``2026-03-10T18:00``; without an offset, local time of the event's zone)
  on boundary events of user tasks (interrupting by default; ``cancelActivity="false"`` for a
  non-interrupting one), on intermediate catch events, also behind an event-based gateway,
  and on the start events of event sub-processes (``engine.timer_scopes``).
  ``bpmn:timeCycle`` is for start events (of a process or of a non-interrupting event
  sub-process) and for non-interrupting boundary events (``cancelActivity="false"``: the
  boundary's path runs at each occurrence while the activity stays active — "remind every
  day until the task is done"; an interrupting one fires once, so it is refused) and holds
  either an ISO 8601 repeating interval
  (``R/2026-01-05T09:00/P1D``, ``R5/…`` five times, ``R/PT1H`` hourly from activation) or a
  crontab line (``0 9 * * 1-5``; 0 and 7 are Sunday; ``@daily`` …; restrict the day of month
  or the day of week, not both). Texts are literal (quotes around them are ignored), not
  expressions. ``marshrut:timezone`` (an IANA name) on the event; default: the engine's
  calendar zone, Europe/Moscow. ``marshrut:businessHours="true"`` on a timeDuration counts
  working time of the business calendar (``engine.calendar``: D = a working day, W = a
  working week). After downtime a schedule's missed fire runs once.
* ``marshrut:select`` on a timer start event: each fire starts one instance per CRM record it
  selects (``entity``: deal | lead | contact | company; ``idleDays``: untouched for that many
  days; ``openOnly``: deals not won or lost, leads not converted or junk — default true;
  ``marshrut:filter`` children: the CRM list filters, ``name="amount__gte" value="1000000"``).
  The data then hold the record under its type, as for an event start.
* Conditions, parameter expressions, placeholders and scripts are sandboxed Python
  (``engine.sandbox``); DMN cells too. Business-rule tasks name their decision with
  ``marshrut:decision`` (the ``id`` of a ``dmn:decision`` in one of the deployed DMN files).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from strictnum import NumberError, int_or_none, parse_decimal, parse_int

from .ports import MARSHRUT_NS, AssignmentSpec, SelectionSpec

M = "{" + MARSHRUT_NS + "}"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
B = "{" + BPMN_NS + "}"

ASSIGNMENT_KINDS = ("user", "role", "department_head", "responsible_department_head",
                    "responsible", "round_robin", "least_loaded")
KINDS_WITHOUT_TARGET = ("responsible", "responsible_department_head")
OUT_OF_OFFICE = ("deputy", "skip")
TASK_PRIORITIES = {"high": 1, "normal": 2, "low": 3}
FIELD_TYPES = ("string", "text", "decimal", "integer", "boolean", "date", "enum", "buttons")
VARIABLE_TYPES = ("string", "integer", "decimal", "boolean", "date", "json")
DEFAULT_PROCESS_PRIORITY = 100
PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", re.S)
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}\Z")
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z",
                       re.ASCII)


@dataclass(frozen=True)
class FormOption:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    name: str
    type: str
    label: str = ""
    required: bool = False
    options: tuple[FormOption, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FormField:
        return cls(d["name"], d["type"], d.get("label", ""), bool(d.get("required")),
                   tuple(FormOption(o["value"], o["label"]) for o in d.get("options", ())))


@dataclass(frozen=True)
class UserTaskConfig:
    assignment: AssignmentSpec
    due: str | None = None
    priority: str = "normal"
    instructions: str = ""
    form: tuple[FormField, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserTaskConfig:
        return cls(AssignmentSpec(**d["assignment"]), d.get("due"), d.get("priority", "normal"),
                   d.get("instructions", ""), tuple(FormField.from_dict(f) for f in d["form"]))


@dataclass(frozen=True)
class ServiceParam:
    name: str
    value: str | None = None       # a literal, typed by the operation's ParamSpec
    expression: str | None = None  # or a sandboxed expression over the data


@dataclass(frozen=True)
class ServiceTaskConfig:
    operation: str
    params: tuple[ServiceParam, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceTaskConfig:
        return cls(d["operation"], tuple(ServiceParam(**p) for p in d["params"]))


@dataclass
class ProcessConfig:
    priority: int = DEFAULT_PROCESS_PRIORITY
    variables: dict[str, Any] = field(default_factory=dict)


class Problems(list[tuple[str, str]]):
    """(element id, message) pairs collected while reading an element."""

    def add(self, element_id: str, message: str) -> None:
        self.append((element_id, message))


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration without years/months (their length varies): PT2H, P1DT30M, P2W."""
    weeks, days, seconds = parse_duration_parts(text)
    return dt.timedelta(weeks=weeks, days=days, seconds=seconds)


def parse_duration_parts(text: str) -> tuple[int, int, int]:
    """(weeks, days, seconds) of a ``parse_duration`` text, kept apart for calendars that
    count a day as a working day; ValueError if it is not such a duration."""
    stripped = text.strip() if isinstance(text, str) else ""
    m = _DURATION.match(stripped)
    if not m or stripped in ("P", "PT") or stripped.endswith("T"):
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as PT2H or P1D")
    w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return w, d, h * 3600 + mi * 60 + s


def _ext_children(el: Any, local: str) -> list[Any]:
    ext = el.find(f"{B}extensionElements")
    return [] if ext is None else list(ext.iterfind(f"{M}{local}"))


def _attr(el: Any, name: str, default: str | None = None) -> str | None:
    return el.get(f"{M}{name}", default)


def read_user_task(el: Any, problems: Problems) -> UserTaskConfig:
    eid = el.get("id", "")
    kind = (_attr(el, "assignment") or "").strip()
    target = (_attr(el, "assignee") or "").strip()
    ooo = (_attr(el, "outOfOffice") or "deputy").strip()
    if not kind:
        problems.add(eid, "user task has no assignment (marshrut:assignment)")
    elif kind not in ASSIGNMENT_KINDS:
        problems.add(eid, f"unknown assignment '{kind}'; use one of {', '.join(ASSIGNMENT_KINDS)}")
    elif kind not in KINDS_WITHOUT_TARGET and not target:
        problems.add(eid, f"assignment '{kind}' needs marshrut:assignee")
    if ooo not in OUT_OF_OFFICE:
        problems.add(eid, f"marshrut:outOfOffice must be deputy or skip, not '{ooo}'")
    due = _attr(el, "due")
    if due is not None:
        try:
            parse_duration(due)
        except ValueError as exc:
            problems.add(eid, f"marshrut:due: {exc}")
    priority = (_attr(el, "priority") or "normal").strip()
    if priority not in TASK_PRIORITIES:
        problems.add(eid, f"marshrut:priority must be low, normal or high, not '{priority}'")
    texts = [n.text or "" for n in _ext_children(el, "instructions")]
    form = tuple(_read_field(f, eid, problems) for f in _ext_children(el, "formField"))
    names = [f.name for f in form]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add(eid, f"form field '{dup}' is defined twice")
    return UserTaskConfig(AssignmentSpec(kind, target, ooo), due, priority,
                          "\n".join(t.strip() for t in texts), form)


def _read_field(f: Any, eid: str, problems: Problems) -> FormField:
    name, ftype = f.get("name", ""), f.get("type", "string")
    if not IDENTIFIER.match(name):
        problems.add(eid, f"form field name '{name}' must be a letter followed by letters, "
                          "digits or '_'")
    if ftype not in FIELD_TYPES:
        problems.add(eid, f"form field '{name}' has unknown type '{ftype}'")
    options = tuple(FormOption(o.get("value", ""), o.get("label") or o.get("value", ""))
                    for o in f.iterfind(f"{M}option"))
    if ftype in ("enum", "buttons") and not options:
        problems.add(eid, f"form field '{name}' of type {ftype} needs marshrut:option children")
    if any(not o.value for o in options):
        problems.add(eid, f"form field '{name}' has an option without a value")
    required = f.get("required", "false").strip().lower() == "true" or ftype == "buttons"
    return FormField(name, ftype, f.get("label", name), required, options)


def read_service_task(el: Any, problems: Problems) -> ServiceTaskConfig:
    eid = el.get("id", "")
    operation = (_attr(el, "operation") or "").strip()
    if not operation:
        problems.add(eid, "service task has no operation (marshrut:operation)")
    params = []
    for p in _ext_children(el, "parameter"):
        name, value, expr = p.get("name", ""), p.get("value"), p.get("expression")
        if (value is None) == (expr is None):
            problems.add(eid, f"parameter '{name}' needs exactly one of value or expression")
        params.append(ServiceParam(name, value, expr))
    names = [p.name for p in params]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add(eid, f"parameter '{dup}' is given twice")
    return ServiceTaskConfig(operation, tuple(params))


def read_process(el: Any, problems: Problems) -> ProcessConfig:
    eid = el.get("id", "")
    config = ProcessConfig()
    raw = _attr(el, "priority")
    if raw is not None:
        try:
            config.priority = parse_int(raw, signed=True)
        except NumberError:
            problems.add(eid, f"marshrut:priority must be an integer, not '{raw}'")
    for v in _ext_children(el, "variable"):
        name, vtype, value = v.get("name", ""), v.get("type", "string"), v.get("value", "")
        if not IDENTIFIER.match(name):
            problems.add(eid, f"variable name '{name}' must be a letter followed by letters, "
                              "digits or '_'")
            continue
        try:
            config.variables[name] = typed_value(vtype, value)
        except ValueError as exc:
            problems.add(eid, f"variable '{name}': {exc}")
    return config


def typed_value(vtype: str, text: str) -> Any:
    """A literal from the XML as the JSON value of ``vtype`` (decimal → normalised string)."""
    text = text.strip() if vtype != "string" else text
    if vtype == "string":
        return text
    if vtype == "integer":
        try:
            return parse_int(text, signed=True)
        except NumberError:
            raise ValueError(f"'{text}' is not an integer") from None
    if vtype == "decimal":
        try:
            return format(parse_decimal(text), "f")
        except NumberError:
            raise ValueError(f"'{text}' is not a decimal number") from None
    if vtype == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"'{text}' is not true or false")
        return text.lower() == "true"
    if vtype == "date":
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"'{text}' is not a date (YYYY-MM-DD)") from None
    if vtype == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("value is not valid JSON") from None
    raise ValueError(f"unknown type '{vtype}'; use one of {', '.join(VARIABLE_TYPES)}")


def read_selection(el: Any, problems: Problems) -> SelectionSpec | None:
    """The ``marshrut:select`` of a timer start event (None if it has none)."""
    eid = el.get("id", "")
    found = _ext_children(el, "select")
    if not found:
        return None
    if len(found) > 1:
        problems.add(eid, "a start event may have one marshrut:select only")
    sel = found[0]
    entity = (sel.get("entity") or "").strip()
    if not entity:
        problems.add(eid, "marshrut:select needs entity (deal, lead, contact or company)")
    idle_raw = sel.get("idleDays")
    idle = None
    if idle_raw is not None:
        idle = int_or_none(idle_raw, minimum=1, maximum=3650)
        if idle is None:
            problems.add(eid, f"marshrut:select idleDays must be a whole number of days from "
                              f"1 to 3650, not '{idle_raw}'")
    open_only = (sel.get("openOnly") or "true").strip().lower()
    if open_only not in ("true", "false"):
        problems.add(eid, f"marshrut:select openOnly must be true or false, not '{open_only}'")
    filters = []
    for f in sel.iterfind(f"{M}filter"):
        name, value = (f.get("name") or "").strip(), f.get("value")
        if not name or value is None:
            problems.add(eid, "marshrut:filter needs name and value")
            continue
        filters.append((name, value))
    return SelectionSpec(entity, idle, open_only == "true", tuple(filters))


def decision_ref(el: Any) -> str | None:
    return _attr(el, "decision")


def placeholders(text: str) -> list[str]:
    return [m.strip() for m in PLACEHOLDER.findall(text)]
