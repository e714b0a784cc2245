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
from sqlalchemy.orm import Session

from . import extensions as ext
from .errors import SandboxError, ValidationError
from .parser import MarshrutBusinessRuleTask, MarshrutParser
from .ports import Assigner, ConditionChecker, EntitySelector
from .safe_xml import UnsafeXml, parse_xml
from .sandbox import Sandbox
from .services import ServiceRegistry
from .timers import read_timer

B = ext.B
SUPPORTED = {"startEvent", "endEvent", "userTask", "serviceTask", "scriptTask",
             "businessRuleTask", "exclusiveGateway", "inclusiveGateway", "parallelGateway",
             "eventBasedGateway", "intermediateCatchEvent", "boundaryEvent", "sequenceFlow"}
DECORATION = {"extensionElements", "documentation", "laneSet", "textAnnotation", "association"}
EVENT_DEFINITIONS = {"startEvent": {"messageEventDefinition", "timerEventDefinition"},
                     "endEvent": {"terminateEventDefinition"},
                     "intermediateCatchEvent": {"messageEventDefinition", "timerEventDefinition"},
                     "boundaryEvent": {"timerEventDefinition"}}
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
        try:
            for i, droot in enumerate(dmn_roots, 1):
                parser.add_dmn_xml(droot, filename=f"DMN file {i}")
            parser.add_bpmn_xml(root, filename="BPMN")
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
            schedules=checker.schedules,
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

    def error(self, el: Any, message: str, element_id: str | None = None) -> None:
        eid = el.get("id", "") if element_id is None else element_id
        self.errors.append(ValidationError(eid, message, getattr(el, "sourceline", None)))

    def run(self) -> None:
        problems = ext.Problems()
        self.config = ext.read_process(self.process, problems)
        self.errors += [ValidationError(e, m, self.process.sourceline) for e, m in problems]
        flows = []
        for el in self.process:
            kind = _local(el)
            if not kind or kind in DECORATION:
                continue
            eid = el.get("id")
            if kind not in SUPPORTED:
                name = f"element {eid}" if eid else "an element"
                self.error(el, f"{name} of type bpmn:{kind} is not supported")
                if eid:
                    self.nodes.setdefault(eid, el)  # so its flows are not reported again
                continue
            if not eid:
                self.error(el, f"bpmn:{kind} on line {el.sourceline} has no id", "")
                continue
            if eid in self.nodes:
                self.error(el, f"id '{eid}' is used twice")
                continue
            if eid in RESERVED_IDS or eid.endswith(".EndJoin") or "BoundaryEvent" in eid:
                self.error(el, f"id '{eid}' is reserved by the engine; rename the element")
            self.nodes[eid] = el
            if kind == "sequenceFlow":
                flows.append(el)
            else:
                self._check_node(kind, el)
        for flow in flows:
            self._check_flow(flow)
        if not any(_local(el) == "startEvent" for el in self.nodes.values()):
            self.error(self.process, "the process has no start event")
        elif not any(_local(el) == "endEvent" for el in self.nodes.values()):
            # the engine would just stop, but a drawing without an end is unfinished work
            # (the editor's linter says so too: "Validate" and deploy must agree with it)
            self.error(self.process, "the process has no end event")

    def _check_node(self, kind: str, el: Any) -> None:
        for child in el:
            ckind = _local(child)
            if ckind in ("standardLoopCharacteristics", "multiInstanceLoopCharacteristics"):
                self.error(el, f"loops on {el.get('id')} are not supported")
            elif ckind.endswith("EventDefinition") and ckind not in EVENT_DEFINITIONS.get(kind,
                                                                                          ()):
                self.error(el, f"element {el.get('id')} of type bpmn:{kind} with "
                               f"bpmn:{ckind} is not supported")
            elif ckind == "messageEventDefinition":
                self._message(el, child, kind)
            elif ckind == "timerEventDefinition":
                self._timer(el, kind)
        definitions = [c for c in el if _local(c).endswith("EventDefinition")]
        if kind == "startEvent" and not definitions:
            self.manual_start = True
        if kind == "intermediateCatchEvent" and not definitions:
            self.error(el, f"intermediate event {el.get('id')} needs a message or timer "
                           "definition")
        if kind == "boundaryEvent" and not definitions:
            self.error(el, f"boundary event {el.get('id')} needs a timer definition")
        if kind != "startEvent" and ext.read_selection(el, ext.Problems()) is not None:
            self.error(el, "marshrut:select belongs on a timer start event")
        if len(definitions) > 1:
            self.error(el, "an event may have only one event definition")
        check = getattr(self, f"_check_{kind}", None)
        if check is not None:
            check(el)

    def _message(self, el: Any, definition: Any, kind: str) -> None:
        ref = definition.get("messageRef")
        message = next((m for m in self.root.iter(f"{B}message") if m.get("id") == ref), None)
        if not ref or message is None:
            self.error(el, f"the message event {el.get('id')} refers to no bpmn:message")
        elif not (message.get("name") or "").strip():
            self.error(el, f"bpmn:message {ref} has no name (the CRM event, e.g. deal.created)")
        elif kind == "startEvent":
            if message.get("name") in self.triggers:
                self.error(el, f"two start events react to '{message.get('name')}'")
            self.triggers.append(message.get("name"))

    def _timer(self, el: Any, kind: str) -> None:
        problems: list[tuple[str, str]] = []
        spec = read_timer(el, self.c.default_timezone, start=kind == "startEvent",
                          problems=problems)
        self.errors += [ValidationError(e, m, el.sourceline) for e, m in problems]
        if spec is None or kind != "startEvent":
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
        timer = el.find(f"{B}timerEventDefinition") is not None
        if not timer and ext.read_selection(el, ext.Problems()) is not None:
            self.error(el, "marshrut:select belongs on a timer start event")

    def _check_boundaryEvent(self, el: Any) -> None:
        eid = el.get("id")
        ref = el.get("attachedToRef")
        host = next((c for c in self.process if ref and c.get("id") == ref), None)
        if host is None:
            self.error(el, f"boundary event {eid} is attached to no element of the process "
                           "(attachedToRef)")
        elif _local(host) != "userTask":
            self.error(el, f"boundary event {eid} is attached to a bpmn:{_local(host)}; "
                           "boundary timers are supported on user tasks only")
        cancel = (el.get("cancelActivity") or "true").strip().lower()
        if cancel not in ("true", "false"):
            self.error(el, f"cancelActivity of {eid} must be true or false, not '{cancel}'")
        if any(f.get("targetRef") == eid for f in self.process.iterfind(f"{B}sequenceFlow")):
            self.error(el, f"boundary event {eid} cannot have incoming sequence flows")

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
        outgoing = [f for f in self.process.iterfind(f"{B}sequenceFlow")
                    if f.get("sourceRef") == el.get("id")]
        default = el.get("default")
        if default and default not in {f.get("id") for f in outgoing}:
            self.error(el, f"default flow '{default}' does not leave gateway {el.get('id')}")
        if len(outgoing) > 1:
            for f in outgoing:
                if f.get("id") != default and f.find(f"{B}conditionExpression") is None:
                    self.error(f, f"flow {f.get('id')} leaves gateway {el.get('id')} without a "
                                  "condition and is not its default flow")
