"""Deploy-time checks: turn uploaded BPMN + DMN into a spec, or list everything wrong with it.

Every problem is a :class:`~engine.errors.ValidationError` naming the BPMN element (or DMN rule)
and, when known, the line — so the editor can point at the shape. Checks run on the XML first
(friendlier messages than the library's), then the library parses, then the DMN cells are
compiled in the sandbox.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import extensions as ext
from .dmn import check_table
from .errors import SandboxError, ValidationError
from .parser import MarshrutBusinessRuleTask, MarshrutParser
from .ports import Assigner, ConditionChecker, EntitySelector
from .safe_xml import UnsafeXml, parse_xml
from .sandbox import Sandbox
from .services import ServiceRegistry
from .timers import boundary_kind, event_subprocess_kind, read_timer

B = ext.B
ACTIVITIES = {"task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask",
              "sendTask", "receiveTask", "subProcess", "callActivity"}
SUPPORTED = ACTIVITIES | {
    "startEvent", "endEvent", "exclusiveGateway", "inclusiveGateway", "parallelGateway",
    "eventBasedGateway", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "sequenceFlow"}
DECORATION = {"extensionElements", "documentation", "laneSet", "textAnnotation", "association",
              "dataObject", "dataObjectReference", "property",
              "ioSpecification", "dataInputAssociation", "dataOutputAssociation", "group",
              "incoming", "outgoing"}
MESSAGE, TIMER, ERROR, ESCALATION, SIGNAL, CONDITIONAL, TERMINATE = (
    "messageEventDefinition", "timerEventDefinition", "errorEventDefinition",
    "escalationEventDefinition", "signalEventDefinition", "conditionalEventDefinition",
    "terminateEventDefinition")
EVENT_DEFINITIONS = {"startEvent": {MESSAGE, TIMER, SIGNAL},
                     "endEvent": {TERMINATE, ERROR, ESCALATION, SIGNAL, MESSAGE},
                     "intermediateCatchEvent": {MESSAGE, TIMER, SIGNAL, CONDITIONAL},
                     "intermediateThrowEvent": {MESSAGE, SIGNAL, ESCALATION},
                     "boundaryEvent": {TIMER, ERROR, ESCALATION, MESSAGE, SIGNAL, CONDITIONAL}}
#: start events of an event sub-process (its trigger)
EVENT_SUBPROCESS_STARTS = {MESSAGE, ERROR, ESCALATION, SIGNAL, TIMER}
#: which activities a boundary event of each kind may be attached to
BOUNDARY_HOSTS = {
    TIMER: {"userTask", "manualTask", "subProcess", "receiveTask", "callActivity"},
    ERROR: {"serviceTask", "subProcess", "callActivity"},
    ESCALATION: {"subProcess", "callActivity"},
    MESSAGE: {"userTask", "manualTask", "subProcess", "receiveTask", "callActivity"},
    SIGNAL: {"userTask", "manualTask", "subProcess", "receiveTask", "callActivity"},
    CONDITIONAL: {"userTask", "manualTask", "subProcess", "receiveTask", "callActivity"},
}
COMPENSATION = ("compensation is not supported; model the undo steps as ordinary tasks "
                "(e.g. after an error boundary event)")
RESERVED_IDS = {"Start", "End", "Root", "StartEventSplit", "StartEventJoin"}
CONDITIONAL_SOURCES = {"exclusiveGateway", "inclusiveGateway"}


@dataclass
class CompiledDefinition:
    key: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    triggers: list[str]
    manual_start: bool
    priority: int
    variables: dict[str, Any]
    dmn_xml: list[str] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    #: see ``ProcessDefinition.catches``
    catches: list[str] = field(default_factory=list)
    #: see ``ProcessDefinition.signal_starts``
    signal_starts: list[str] = field(default_factory=list)


def _local(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag[len(B):] if tag.startswith(B) else ""


class Compiler:
    """Checks and parses definitions; collaborators come from the ``Engine``."""

    def __init__(self, registry: ServiceRegistry, sandbox: Sandbox,
                 assigner: Assigner | None, *, selector: EntitySelector | None = None,
                 default_timezone: str = "UTC",
                 conditions: ConditionChecker | None = None) -> None:
        self.registry = registry
        self.conditions = conditions
        self.sandbox = sandbox
        self.assigner = assigner
        self.selector = selector
        self.default_timezone = default_timezone

    def compile(self, bpmn_xml: str | bytes, dmn_xmls: tuple[str | bytes, ...] | list[Any] = (),
                session: Session | None = None
                ) -> tuple[CompiledDefinition | None, list[ValidationError]]:
        errors: list[ValidationError] = []
        try:
            root = parse_xml(bpmn_xml, what="the BPMN file")
        except UnsafeXml as exc:
            return None, [ValidationError("", str(exc), exc.line)]
        dmn_roots = []
        for i, dmn in enumerate(dmn_xmls, 1):
            try:
                dmn_roots.append(parse_xml(dmn, what=f"DMN file {i}"))
            except UnsafeXml as exc:
                errors.append(ValidationError("", str(exc), exc.line))
        if root.tag != f"{B}definitions":
            return None, errors + [ValidationError("", "the file is not BPMN 2.0: its root "
                                                   "element must be bpmn:definitions")]
        decisions = self._decision_ids(dmn_roots, errors)
        process = self._pick_process(root, errors)
        if process is None:
            return None, errors
        checker = _ProcessChecker(self, root, process, decisions, session)
        checker.run()
        errors += checker.errors
        for store in root.iter(f"{B}dataStore"):
            errors.append(ValidationError(store.get("id", ""), f"data store "
                          f"'{store.get('name') or store.get('id')}' is not supported; keep "
                          "the data in the process variables or read it with a service task",
                          store.sourceline))
        if errors:
            return None, errors
        return self._parse(root, process, dmn_roots, dmn_xmls, checker, errors)

    # ------------------------------------------------------------------ parts
    def _decision_ids(self, dmn_roots: list[Any], errors: list[ValidationError]) -> set[str]:
        ids: set[str] = set()
        for i, droot in enumerate(dmn_roots, 1):
            found = [d for d in droot.iter() if isinstance(d.tag, str)
                     and d.tag.endswith("}decision")]
            if not droot.tag.endswith("}definitions") or not found:
                errors.append(ValidationError("", f"DMN file {i} has no dmn:decision"))
            elif len(found) > 1:
                errors.append(ValidationError(found[1].get("id", ""), f"DMN file {i} has "
                                              "several decisions; put one decision per file"))
            for d in found:
                for problem in check_table(d):
                    errors.append(ValidationError(d.get("id", ""), problem, d.sourceline))
                if not d.get("id"):
                    errors.append(ValidationError("", f"a decision in DMN file {i} has no id",
                                                  d.sourceline))
                elif d.get("id") in ids:
                    errors.append(ValidationError(d.get("id"), "decision id used twice"))
                ids.add(d.get("id", ""))
        return ids

    def _pick_process(self, root: Any, errors: list[ValidationError]) -> Any:
        processes = root.findall(f"{B}process")
        if not processes:
            errors.append(ValidationError("", "the file has no bpmn:process"))
            return None
        executable = [p for p in processes if p.get("isExecutable") == "true"]
        if not executable and len(processes) == 1 and p_unmarked(processes[0]):
            executable = processes
        if len(executable) == 1:
            if not executable[0].get("id"):
                errors.append(ValidationError("", "the process has no id",
                                              executable[0].sourceline))
                return None
            return executable[0]
        ids = ", ".join(p.get("id", "?") for p in (executable or processes))
        msg = (f"several executable processes ({ids}); mark exactly one isExecutable=\"true\""
               if executable else f"no executable process ({ids}); set isExecutable=\"true\"")
        errors.append(ValidationError(processes[0].get("id", ""), msg, processes[0].sourceline))
        return None

    def _parse(self, root: Any, process: Any, dmn_roots: list[Any], dmn_xmls: Any,
               checker: _ProcessChecker, errors: list[ValidationError]
               ) -> tuple[CompiledDefinition | None, list[ValidationError]]:
        key = process.get("id")
        parser = MarshrutParser(default_timezone=self.default_timezone)
        local = {p.get("id") for p in root.findall(f"{B}process")}
        callees = resolve_calls(checker.session, key,
                                [(el, k) for el, k in checker.calls if k not in local], errors)
        if errors:
            return None, errors
        try:
            for i, droot in enumerate(dmn_roots, 1):
                parser.add_dmn_xml(droot, filename=f"DMN file {i}")
            parser.add_bpmn_xml(root, filename="BPMN")
            for callee in callees:
                for j, dmn in enumerate(callee.dmn_xml or (), 1):
                    parser.add_dmn_xml(parse_xml(dmn, what="a called process's DMN"),
                                       filename=f"{callee.key} v{callee.version} DMN {j}")
                parser.add_bpmn_xml(parse_xml(callee.bpmn_xml, what="a called process"),
                                    filename=f"{callee.key} v{callee.version}")
            spec = parser.get_spec(key)
            subs = parser.get_subprocess_specs(key)
        except ValidationException as exc:
            line = exc.line_number if isinstance(exc.line_number, int) else None
            return None, [ValidationError(exc.id or "", str(exc.args[0] if exc.args else exc),
                                          line)]
        except Exception as exc:  # the library's parser raises assorted errors on odd input
            return None, [ValidationError("", f"the process cannot be parsed: {exc!r}")]
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, MarshrutBusinessRuleTask):
                self._check_decision(task_spec, errors)
        if errors:
            return None, errors
        return CompiledDefinition(
            key=key, name=(process.get("name") or key)[:300], spec=spec, subprocess_specs=subs,
            triggers=checker.triggers, manual_start=checker.manual_start,
            priority=checker.config.priority, variables=checker.config.variables,
            dmn_xml=[d if isinstance(d, str) else d.decode("utf-8") for d in dmn_xmls],
            schedules=checker.schedules, catches=sorted(set(checker.catches)),
            signal_starts=checker.signal_starts,
        ), []

    def _check_decision(self, task_spec: Any, errors: list[ValidationError]) -> None:
        table = task_spec.dmnEngine.decision_table
        for inp in table.inputs:
            if inp.expression:
                self._expr(inp.expression, inp.id, "input expression", errors)
        for rule in table.rules:
            for entry in rule.inputEntries:
                for lhs in entry.lhs:
                    if lhs is None or not lhs.strip():
                        continue
                    cell = lhs.replace("?", "dmninputexpr")
                    candidates = [cell] if "dmninputexpr" in cell else [
                        f"(x) == ({cell})", f"x {cell}"]
                    if not any(self._compiles(c) for c in candidates):
                        errors.append(ValidationError(rule.id, f"rule {rule.row_number} of "
                                                      f"decision {table.id}: cell '{lhs}' is "
                                                      "not a valid test"))
            for out in rule.outputEntries:
                if out.text:
                    self._expr(out.text, rule.id, f"output of rule {rule.row_number}", errors)

    def _compiles(self, source: str) -> bool:
        try:
            self.sandbox.check(source)
            return True
        except SandboxError:
            return False

    def _expr(self, source: str, element_id: str, what: str, errors: list[ValidationError],
              line: int | None = None, mode: str = "eval") -> None:
        try:
            self.sandbox.check(source, mode)
        except SandboxError as exc:
            errors.append(ValidationError(element_id, f"{what}: {exc.message}", line))


def resolve_calls(session: Session | None, caller: str, calls: list[tuple[Any, str]],
                  errors: list[ValidationError]) -> list[Any]:
    """The deployed definitions the call activities name (and those they call in turn):
    ``marshrut:version="N"`` pins a version, otherwise the active one (else the latest) as
    of this deploy — the caller's spec holds the callee's, so redeploy the caller to pick
    up a newer version."""
    if not calls:
        return []
    if session is None:
        for el, _key in calls:
            errors.append(ValidationError(el.get("id", ""), "call activities are checked "
                                          "against the deployed processes; validate with a "
                                          "database session", el.sourceline))
        return []
    from .store import ProcessDefinition  # the store imports nothing of the compiler
    found: dict[str, Any] = {}
    pins: dict[str, str] = {}
    queue = [(el, key, (el.get(f"{ext.M}version") or "").strip()) for el, key in calls]
    while queue:
        el, key, pin = queue.pop(0)
        if pins.setdefault(key, pin) != pin:
            errors.append(ValidationError(el.get("id", ""), f"process '{key}' is called in two "
                          f"versions ({pins[key] or 'latest'} and {pin or 'latest'}); "
                          "call one version of a process", el.sourceline))
            continue
        if key in found or key == caller:
            continue  # a direct self-call is reported by the checker, a call back below
        rows = session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                               .order_by(ProcessDefinition.version)).all()
        row = None
        if pin:
            if not pin.isdigit():
                errors.append(ValidationError(el.get("id", ""), f"marshrut:version of "
                              f"{el.get('id')} must be a version number, not '{pin}'"))
                continue
            row = next((r for r in rows if r.version == int(pin)), None)
        elif rows:
            row = next((r for r in rows if r.active), rows[-1])
        if row is None:
            errors.append(ValidationError(el.get("id", ""), (
                f"call activity {el.get('id')} calls version {pin} of process '{key}', which "
                "is not deployed" if pin else
                f"call activity {el.get('id')} calls process '{key}', which is not deployed"),
                el.sourceline))
            continue
        found[key] = row
        try:
            callee_root = parse_xml(row.bpmn_xml, what="a called process")
        except UnsafeXml:
            continue
        for sub in callee_root.iter(f"{B}callActivity"):
            called = (sub.get("calledElement") or "").strip()
            if called == caller:
                errors.append(ValidationError(el.get("id", ""), f"process '{key}' calls "
                              f"'{caller}' back: recursive calls are not supported"))
            elif called:
                queue.append((sub, called, (sub.get(f"{ext.M}version") or "").strip()))
    return list(found.values())


def p_unmarked(process: Any) -> bool:
    return process.get("isExecutable") is None


class _ProcessChecker:
    """Walks one bpmn:process and collects problems (see ``Compiler.compile``)."""

    def __init__(self, compiler: Compiler, root: Any, process: Any, decisions: set[str],
                 session: Session | None) -> None:
        self.c = compiler
        self.root = root
        self.process = process
        self.decisions = decisions
        self.session = session
        self.errors: list[ValidationError] = []
        self.triggers: list[str] = []
        self.manual_start = False
        self.nodes: dict[str, Any] = {}
        self.config = ext.ProcessConfig()
        self.schedules: list[dict[str, Any]] = []
        #: call activities and the process key each calls
        self.calls: list[tuple[Any, str]] = []
        #: message names caught mid-process; "*" for conditional events
        self.catches: list[str] = []
        #: signal names of the process's signal start events
        self.signal_starts: list[str] = []

    def error(self, el: Any, message: str, element_id: str | None = None) -> None:
        eid = el.get("id", "") if element_id is None else element_id
        self.errors.append(ValidationError(eid, message, getattr(el, "sourceline", None)))

    def run(self) -> None:
        problems = ext.Problems()
        self.config = ext.read_process(self.process, problems)
        self.errors += [ValidationError(e, m, self.process.sourceline) for e, m in problems]
        #: element id -> its container (the process or a bpmn:subProcess)
        self.container: dict[str, Any] = {}
        flows: list[Any] = []
        nodes: list[tuple[str, Any]] = []
        self._collect(self.process, flows, nodes)
        for kind, el in nodes:
            self._check_node(kind, el)
        for flow in flows:
            self._check_flow(flow)
        self._check_cycles(flows)
        if not any(_local(el) == "startEvent" for el in self.process):
            self.error(self.process, "the process has no start event")
        elif not any(_local(el) == "endEvent" for el in self.process):
            # the engine would just stop, but a drawing without an end is unfinished work
            # (the editor's linter says so too: "Validate" and deploy must agree with it)
            self.error(self.process, "the process has no end event")

    def _check_cycles(self, flows: list[Any]) -> None:
        """A loop of sequence flows must pass a deciding gateway (exclusive, inclusive or
        event-based): one without any never ends, and the library cannot even plan it."""
        deciding = {"exclusiveGateway", "inclusiveGateway", "eventBasedGateway"}
        graph: dict[str, list[str]] = {}
        for f in flows:
            src, dst = f.get("sourceRef", ""), f.get("targetRef", "")
            if src in self.nodes and dst in self.nodes and \
                    _local(self.nodes[src]) not in deciding:
                graph.setdefault(src, []).append(dst)
        state: dict[str, int] = {}  # 1: on the path, 2: done

        def visit(node: str, path: list[str]) -> list[str] | None:
            state[node] = 1
            for nxt in graph.get(node, ()):
                if _local(self.nodes[nxt]) in deciding:
                    continue
                if state.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                if nxt not in state:
                    found = visit(nxt, path + [nxt])
                    if found:
                        return found
            state[node] = 2
            return None

        for start in list(graph):
            if start not in state:
                cycle = visit(start, [start])
                if cycle:
                    self.error(self.nodes[cycle[0]], "the flow loops back without a deciding "
                               f"gateway ({' → '.join(cycle)}); route the loop through an "
                               "exclusive gateway with a way out")
                    return

    def _collect(self, container: Any, flows: list[Any], nodes: list[tuple[str, Any]]) -> None:
        """Register the elements of a process or sub-process (sub-processes recursively)."""
        for el in container:
            kind = _local(el)
            if not kind or kind in DECORATION:
                continue
            eid = el.get("id")
            if kind == "dataStoreReference":
                self.error(el, f"data store {eid} is not supported; keep the data in the "
                               "process variables or read it with a service task")
                continue
            if kind not in SUPPORTED:
                name = f"element {eid}" if eid else "an element"
                self.error(el, f"{name} of type bpmn:{kind} is not supported")
                if eid:
                    self.nodes.setdefault(eid, el)  # so its flows are not reported again
                    self.container.setdefault(eid, container)
                continue
            if not eid:
                self.error(el, f"bpmn:{kind} on line {el.sourceline} has no id", "")
                continue
            if eid in self.nodes:
                self.error(el, f"id '{eid}' is used twice")
                continue
            if eid in RESERVED_IDS or eid.endswith((".EndJoin", ".BoundaryEventSplit",
                                                    ".BoundaryEventJoin")) \
                    or "[child]" in eid:
                self.error(el, f"id '{eid}' is reserved by the engine; rename the element")
            self.nodes[eid] = el
            self.container[eid] = container
            if kind == "sequenceFlow":
                flows.append(el)
            else:
                nodes.append((kind, el))
            if kind == "subProcess":
                self._collect(el, flows, nodes)

    def _in_event_subprocess(self, el: Any) -> bool:
        parent = self.container.get(el.get("id", ""))
        return parent is not None and _local(parent) == "subProcess" \
            and parent.get("triggeredByEvent") == "true"

    def _io_associations(self, el: Any) -> None:
        """Data associations to a task's own ioSpecification inputs/outputs: the library
        cannot map them (tasks see the whole process data)."""
        io = el.find(f"{B}ioSpecification")
        if io is None:
            return
        own = {c.get("id") for c in io if _local(c) in ("dataInput", "dataOutput")}
        for assoc in el:
            if _local(assoc) not in ("dataInputAssociation", "dataOutputAssociation"):
                continue
            refs = {(r.text or "").strip() for r in assoc
                    if _local(r) in ("sourceRef", "targetRef")}
            if refs & own:
                self.error(el, "mapping data to the task's own inputs/outputs "
                               "(ioSpecification) is not supported; tasks see the whole "
                               "process data")
                return

    def _check_node(self, kind: str, el: Any) -> None:
        self._io_associations(el)
        allowed = EVENT_DEFINITIONS.get(kind, set())
        if kind == "startEvent" and self._in_event_subprocess(el):
            allowed = EVENT_SUBPROCESS_STARTS
        elif kind == "startEvent" and self.container.get(el.get("id")) is not self.process:
            allowed = set()  # an embedded sub-process starts with a none start event
        if el.get("isForCompensation") == "true":
            self.error(el, f"element {el.get('id')}: {COMPENSATION}")
        for child in el:
            ckind = _local(child)
            if ckind == "standardLoopCharacteristics":
                self._loop(el, child)
            elif ckind == "multiInstanceLoopCharacteristics":
                self._multi_instance(el, child)
            elif ckind == "compensateEventDefinition":
                self.error(el, f"element {el.get('id')}: {COMPENSATION}")
            elif ckind.endswith("EventDefinition") and ckind not in allowed:
                self.error(el, f"element {el.get('id')} of type bpmn:{kind} with "
                               f"bpmn:{ckind} is not supported")
            elif ckind == MESSAGE:
                self._message(el, child, kind)
            elif ckind == TIMER:
                self._timer(el, kind)
            elif ckind in (ERROR, ESCALATION, SIGNAL):
                self._ref(el, child, ckind, kind)
            elif ckind == CONDITIONAL:
                self._conditional(el, child)
        definitions = [c for c in el if _local(c).endswith("EventDefinition")]
        if kind == "startEvent" and not definitions \
                and self.container.get(el.get("id")) is self.process:
            self.manual_start = True
        if kind == "startEvent" and not definitions and self._in_event_subprocess(el):
            self.error(el, f"the start event {el.get('id')} of an event sub-process needs a "
                           "message, timer, error, escalation or signal definition")
        if kind == "intermediateCatchEvent" and not definitions:
            self.error(el, f"intermediate event {el.get('id')} needs a message, timer, signal "
                           "or conditional definition")
        if kind == "boundaryEvent" and not definitions:
            self.error(el, f"boundary event {el.get('id')} needs an event definition")
        if kind != "startEvent" and ext.read_selection(el, ext.Problems()) is not None:
            self.error(el, "marshrut:select belongs on a timer start event")
        if len(definitions) > 1:
            self.error(el, "an event may have only one event definition")
        check = getattr(self, f"_check_{kind}", None)
        if check is not None:
            check(el)

    def _loop(self, el: Any, loop: Any) -> None:
        eid = el.get("id")
        if _local(el) not in ACTIVITIES:
            self.error(el, f"only activities can loop; {eid} is a bpmn:{_local(el)}")
            return
        maximum = (loop.get("loopMaximum") or "").strip()
        if not maximum.isdigit() or int(maximum) < 1:
            self.error(el, f"the loop of {eid} needs loopMaximum, a whole number of at least 1 "
                           "(a limit, so a loop cannot run for ever)")
        cond = loop.find(f"{B}loopCondition")
        if cond is not None and (cond.text or "").strip():
            self.c._expr(cond.text, eid, "loop condition", self.errors, el.sourceline)

    def _multi_instance(self, el: Any, loop: Any) -> None:
        eid = el.get("id")
        if _local(el) not in ACTIVITIES:
            self.error(el, f"only activities can be multi-instance; {eid} is a "
                           f"bpmn:{_local(el)}")
            return
        seq = (loop.get("isSequential") or "false").strip().lower()
        if seq not in ("true", "false"):
            self.error(el, f"isSequential of {eid} must be true or false, not '{seq}'")
        card = loop.find(f"{B}loopCardinality")
        ref = loop.find(f"{B}loopDataInputRef")
        item = loop.find(f"{B}inputDataItem")
        if (card is None) == (ref is None):
            self.error(el, f"multi-instance {eid} needs exactly one of loopCardinality (how "
                           "many times) or loopDataInputRef (the list in the data to go over)")
        if card is not None:
            if not (card.text or "").strip():
                self.error(el, f"the loopCardinality of {eid} is empty")
            else:
                self.c._expr(card.text, eid, "loop cardinality", self.errors, el.sourceline)
        if ref is not None:
            if not (ref.text or "").strip().isidentifier():
                self.error(el, f"loopDataInputRef of {eid} must name a variable of the data "
                               f"(e.g. products), not '{(ref.text or '').strip()}'")
            if item is None or not (item.get("name") or item.get("id") or "").strip():
                self.error(el, f"multi-instance {eid} needs an inputDataItem naming the "
                               "variable that holds the current element (e.g. product)")
        out = loop.find(f"{B}loopDataOutputRef")
        out_item = loop.find(f"{B}outputDataItem")
        if (out is None) != (out_item is None):
            self.error(el, f"multi-instance {eid}: loopDataOutputRef and outputDataItem go "
                           "together (the result list and the variable each instance sets)")
        done = loop.find(f"{B}completionCondition")
        if done is not None and (done.text or "").strip():
            self.c._expr(done.text, eid, "completion condition", self.errors, el.sourceline)

    def _ref(self, el: Any, definition: Any, ckind: str, kind: str) -> None:
        """Error, escalation and signal events refer to a bpmn:error/escalation/signal."""
        tag = ckind[:-len("EventDefinition")]
        attr = f"{tag}Ref"
        ref = definition.get(attr)
        if not ref:
            if ckind == SIGNAL or kind not in ("boundaryEvent", "startEvent"):
                self.error(el, f"the {tag} event {el.get('id')} refers to no bpmn:{tag} "
                               f"({attr})")
            return  # a catching error/escalation event without a ref catches every code
        target = next((m for m in self.root.iter(f"{B}{tag}") if m.get("id") == ref), None)
        if target is None:
            self.error(el, f"the {tag} event {el.get('id')} refers to bpmn:{tag} '{ref}', "
                           "which the file does not define")
        elif ckind == SIGNAL and not (target.get("name") or "").strip():
            self.error(el, f"bpmn:signal {ref} has no name")
        elif ckind == SIGNAL and kind == "startEvent" \
                and self.container.get(el.get("id")) is self.process:
            name = target.get("name").strip()
            if name in self.signal_starts:
                self.error(el, f"two start events react to signal '{name}'")
            self.signal_starts.append(name)

    def _conditional(self, el: Any, definition: Any) -> None:
        self.catches.append("*")
        cond = definition.find(f"{B}condition")
        if cond is None or not (cond.text or "").strip():
            self.error(el, f"the conditional event {el.get('id')} has no condition")
        else:
            self.c._expr(cond.text, el.get("id"), "condition", self.errors, el.sourceline)

    def _message(self, el: Any, definition: Any, kind: str) -> None:
        ref = definition.get("messageRef")
        message = next((m for m in self.root.iter(f"{B}message") if m.get("id") == ref), None)
        if not ref or message is None:
            self.error(el, f"the message event {el.get('id')} refers to no bpmn:message")
        elif not (message.get("name") or "").strip():
            self.error(el, f"bpmn:message {ref} has no name (the CRM event, e.g. deal.created)")
        elif kind in ("intermediateCatchEvent", "boundaryEvent") \
                or (kind == "startEvent" and self._in_event_subprocess(el)):
            self.catches.append(message.get("name"))
        elif kind == "startEvent" and self.container.get(el.get("id")) is self.process:
            if message.get("name") in self.triggers:
                self.error(el, f"two start events react to '{message.get('name')}'")
            self.triggers.append(message.get("name"))

    def _timer(self, el: Any, kind: str) -> None:
        problems: list[tuple[str, str]] = []
        scoped = event_subprocess_kind(el)  # armed when its (sub-)process starts
        spec = read_timer(el, self.c.default_timezone, problems=problems,
                          start=kind == "startEvent" and scoped is None,
                          event_subprocess=scoped, boundary=boundary_kind(el))
        self.errors += [ValidationError(e, m, el.sourceline) for e, m in problems]
        if spec is None or kind != "startEvent" or scoped is not None:
            if scoped is not None and ext.read_selection(el, ext.Problems()) is not None:
                self.error(el, "marshrut:select belongs on the timer start event of a process")
            return
        chosen = ext.Problems()
        selection = ext.read_selection(el, chosen)
        self.errors += [ValidationError(e, m, el.sourceline) for e, m in chosen]
        if selection is not None and not chosen:
            message = ("entity selection needs the CRM bridge (the engine has no selector)"
                       if self.c.selector is None
                       else self.c.selector.validate(self.session, selection))
            if message:
                self.error(el, f"marshrut:select: {message}")
        self.schedules.append(spec.to_dict() | {
            "select": selection.to_dict() if selection is not None else None})

    def _check_startEvent(self, el: Any) -> None:
        eid = el.get("id")
        if not any(f.get("sourceRef") == eid for f in self.process.iter(f"{B}sequenceFlow")):
            self.error(el, f"start event {eid} has no outgoing sequence flow")
        timer = el.find(f"{B}timerEventDefinition") is not None
        if not timer and ext.read_selection(el, ext.Problems()) is not None:
            self.error(el, "marshrut:select belongs on a timer start event")

    def _check_boundaryEvent(self, el: Any) -> None:
        eid = el.get("id")
        ref = el.get("attachedToRef")
        host = self.nodes.get(ref or "")
        definition = next((_local(c) for c in el if _local(c).endswith("EventDefinition")), "")
        if host is None or self.container.get(ref) is not self.container.get(eid):
            self.error(el, f"boundary event {eid} is attached to no element of the process "
                           "(attachedToRef)")
        elif definition in BOUNDARY_HOSTS and _local(host) not in BOUNDARY_HOSTS[definition]:
            kinds = ", ".join(f"bpmn:{k}" for k in sorted(BOUNDARY_HOSTS[definition]))
            what = definition[:-len("EventDefinition")]
            self.error(el, f"boundary event {eid} is attached to a bpmn:{_local(host)}; "
                           f"boundary {what} events are supported on {kinds}")
        cancel = (el.get("cancelActivity") or "true").strip().lower()
        if cancel not in ("true", "false"):
            self.error(el, f"cancelActivity of {eid} must be true or false, not '{cancel}'")
        elif cancel == "false" and definition == ERROR:
            self.error(el, f"error boundary event {eid} always interrupts its activity; "
                           "remove cancelActivity=\"false\"")
        if any(f.get("targetRef") == eid for f in self.process.iter(f"{B}sequenceFlow")):
            self.error(el, f"boundary event {eid} cannot have incoming sequence flows")

    def _check_subProcess(self, el: Any) -> None:
        eid = el.get("id")
        starts = [c for c in el if _local(c) == "startEvent"]
        flows = [f for f in self.process.iter(f"{B}sequenceFlow")
                 if eid in (f.get("sourceRef"), f.get("targetRef"))]
        if el.get("triggeredByEvent") == "true":
            parent = self.container.get(eid)
            if parent is not self.process and parent is not None \
                    and parent.get("triggeredByEvent") == "true":
                self.error(el, f"event sub-process {eid} cannot be drawn inside another event "
                               "sub-process; draw it in the process or in an embedded "
                               "sub-process")
            if len(starts) != 1:
                self.error(el, f"event sub-process {eid} needs exactly one start event")
            if flows:
                self.error(el, f"event sub-process {eid} cannot have sequence flows in or out; "
                               "its start event triggers it")
            if any(_local(c) == "boundaryEvent" and c.get("attachedToRef") == eid
                   for c in self.process.iter()):
                self.error(el, f"event sub-process {eid} cannot have boundary events")
        elif not starts:
            self.error(el, f"sub-process {eid} has no start event")
        elif len(starts) > 1:
            self.error(el, f"sub-process {eid} has several start events; give it one")
        if starts and not any(_local(c) == "endEvent" for c in el):
            self.error(el, f"sub-process {eid} has no end event")

    def _check_callActivity(self, el: Any) -> None:
        called = (el.get("calledElement") or "").strip()
        if not called:
            self.error(el, f"call activity {el.get('id')} names no process (calledElement)")
        elif called == self.process.get("id"):
            self.error(el, f"call activity {el.get('id')} calls its own process")
        else:
            self.calls.append((el, called))

    def _check_sendTask(self, el: Any) -> None:
        self._task_message(el)

    def _check_receiveTask(self, el: Any) -> None:
        self._task_message(el)

    def _task_message(self, el: Any) -> None:
        ref = el.get("messageRef")
        message = next((m for m in self.root.iter(f"{B}message") if m.get("id") == ref), None)
        if not ref or message is None:
            self.error(el, f"bpmn:{_local(el)} {el.get('id')} refers to no bpmn:message "
                           "(messageRef)")
        elif not (message.get("name") or "").strip():
            self.error(el, f"bpmn:message {ref} has no name")
        elif _local(el) == "receiveTask":
            self.catches.append(message.get("name"))

    def _check_manualTask(self, el: Any) -> None:
        self._check_userTask(el)

    def _check_userTask(self, el: Any) -> None:
        problems = ext.Problems()
        config = ext.read_user_task(el, problems)
        self.errors += [ValidationError(e, m, el.sourceline) for e, m in problems]
        spec = config.assignment
        if self.c.assigner is not None and self.session is not None and not problems \
                and spec.kind in ext.ASSIGNMENT_KINDS:
            message = self.c.assigner.validate(self.session, spec)
            if message:
                self.error(el, f"assignment: {message}")
        for expr in ext.placeholders(config.instructions):
            self.c._expr(expr, el.get("id"), f"placeholder {{{{{expr}}}}}", self.errors,
                         el.sourceline)

    def _check_serviceTask(self, el: Any) -> None:
        problems = ext.Problems()
        config = ext.read_service_task(el, problems)
        self.errors += [ValidationError(e, m, el.sourceline) for e, m in problems]
        if config.operation:
            for message in self.c.registry.check_params(config):
                self.error(el, message)
        for p in config.params:
            if p.expression is not None:
                self.c._expr(p.expression, el.get("id"), f"parameter '{p.name}'", self.errors,
                             el.sourceline)

    def _check_scriptTask(self, el: Any) -> None:
        script = el.find(f"{B}script")
        if script is None or not (script.text or "").strip():
            self.error(el, "script task has no script")
            return
        self.c._expr(script.text, el.get("id"), "script", self.errors, el.sourceline, "exec")

    def _check_businessRuleTask(self, el: Any) -> None:
        ref = ext.decision_ref(el)
        if not ref:
            self.error(el, "business rule task names no decision (marshrut:decision)")
        elif ref not in self.decisions:
            known = ", ".join(sorted(self.decisions)) or "no DMN files uploaded"
            self.error(el, f"decision '{ref}' is not in the uploaded DMN files ({known})")

    def _check_flow(self, flow: Any) -> None:
        fid = flow.get("id")
        src, dst = self.nodes.get(flow.get("sourceRef", "")), self.nodes.get(
            flow.get("targetRef", ""))
        here = self.container.get(fid)
        if src is not None and dst is not None and (
                self.container.get(src.get("id")) is not here
                or self.container.get(dst.get("id")) is not here):
            self.error(flow, f"sequence flow {fid} crosses the border of a sub-process; "
                             "connect elements inside the same (sub-)process")
            return
        if src is None or dst is None:
            self.error(flow, f"sequence flow {fid} must connect two elements of the process")
            return
        cond = flow.find(f"{B}conditionExpression")
        if cond is None:
            return
        if _local(src) not in CONDITIONAL_SOURCES:
            self.error(flow, f"sequence flow {fid} has a condition but leaves a "
                             f"bpmn:{_local(src)}; only gateway flows may have conditions")
        elif src.get("default") == fid:
            self.error(flow, f"sequence flow {fid} is the gateway's default and cannot have a "
                             "condition")
        elif not (cond.text or "").strip():
            self.error(flow, f"sequence flow {fid} has an empty condition")
        else:
            before = len(self.errors)
            self.c._expr(cond.text, fid, f"condition of flow {fid}", self.errors,
                         flow.sourceline)
            if len(self.errors) == before and self.c.conditions is not None:
                for message in self.c.conditions.check(cond.text):
                    self.error(flow, message)

    def _check_exclusiveGateway(self, el: Any) -> None:
        self._check_gateway(el)

    def _check_inclusiveGateway(self, el: Any) -> None:
        self._check_gateway(el)

    def _check_gateway(self, el: Any) -> None:
        outgoing = [f for f in self.process.iter(f"{B}sequenceFlow")
                    if f.get("sourceRef") == el.get("id")]
        default = el.get("default")
        if default and default not in {f.get("id") for f in outgoing}:
            self.error(el, f"default flow '{default}' does not leave gateway {el.get('id')}")
        if len(outgoing) > 1:
            for f in outgoing:
                if f.get("id") != default and f.find(f"{B}conditionExpression") is None:
                    self.error(f, f"flow {f.get('id')} leaves gateway {el.get('id')} without a "
                                  "condition and is not its default flow")
