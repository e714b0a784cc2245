"""The engine's validation messages in the user's language, for the process editor.

The engine (no Flask) reports problems in English with element ids inside the text; the editor
already points at the shape, so the translations leave the ids out. Messages without a pattern
here are shown as the engine wrote them.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext

from engine.errors import ValidationError

_ = gettext  # for pybabel: the msgids below are extracted from the lambdas

PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^the process has no start event$"),
     lambda m: _("the process has no start event")),
    (re.compile(r"^the process has no end event$"),
     lambda m: _("the process has no end event")),
    (re.compile(r"^user task has no assignment"),
     lambda m: _("the task does not say who gets it (Assignment)")),
    (re.compile(r"^service task has no operation"),
     lambda m: _("the action has no operation chosen")),
    (re.compile(r"^script task has no script$"), lambda m: _("the script task has no code")),
    (re.compile(r"^flow \S+ leaves gateway \S+ without a condition and is not its default flow$"),
     lambda m: _("the flow leaves a gateway without a condition and is not its default flow")),
    (re.compile(r"^sequence flow \S+ has an empty condition$"),
     lambda m: _("the flow's condition is empty")),
    (re.compile(r"^sequence flow \S+ must connect two elements of the process$"),
     lambda m: _("the flow must connect two elements of the process")),
    (re.compile(r"^the message event \S+ refers to no bpmn:message$|^bpmn:message \S+ has no name"),
     lambda m: _("pick the CRM event that starts the process")),
    (re.compile(r"^id '(?P<id>[^']*)' is reserved by the engine; rename the element$"),
     lambda m: _("the id «%(id)s» is reserved by the engine; rename the element", id=m["id"])),
    (re.compile(r"^id '(?P<id>[^']*)' is used twice$"),
     lambda m: _("the id «%(id)s» is used twice", id=m["id"])),
    (re.compile(r"^condition of flow \S+: (?P<rest>.*)$", re.S),
     lambda m: _("condition: %(problem)s", problem=m["rest"])),
]


def translate_message(message: str) -> str:
    for pattern, render in PATTERNS:
        m = pattern.match(message)
        if m:
            return render(m)
    return _from_templates(message) or message


def translate_errors(errors: list[ValidationError]) -> list[ValidationError]:
    return [ValidationError(e.element_id, translate_message(e.message), e.line) for e in errors]


def N_(message: str) -> str:  # marks a msgid for pybabel (-k N_); translated when used
    return message


#: The engine's messages as templates: ``{name}`` stands for any text and is handed to the
#: Russian message as ``%(name)s``. tests/web/test_engine_messages_russian.py renders every
#: message the engine's checks can write and fails on one this table leaves in English.
TEMPLATES: list[tuple[str, str]] = [
    # the file and its processes
    ("the file is not BPMN 2.0: its root element must be bpmn:definitions",
     N_("the file is not BPMN 2.0: its root element must be bpmn:definitions")),
    ("the file has no bpmn:process", N_("the file has no process (bpmn:process)")),
    ("the process has no id", N_("the process has no id")),
    ("several executable processes ({ids}); mark exactly one isExecutable=\"true\"",
     N_("the file has several executable processes (%(ids)s); mark exactly one as executable")),
    ("no executable process ({ids}); set isExecutable=\"true\"",
     N_("the file has no executable process (%(ids)s); mark one as executable")),
    ("the process cannot be parsed: {problem}", N_("the process cannot be read: %(problem)s")),
    ("data store '{name}' is not supported; keep the data in the process variables or read it "
     "with a service task", N_("data stores («%(name)s») are not supported; keep the data in the "
                               "process variables or read it with an action")),
    ("data store {name} is not supported; keep the data in the process variables or read it "
     "with a service task", N_("data stores («%(name)s») are not supported; keep the data in the "
                               "process variables or read it with an action")),
    ("element {id} of type bpmn:{kind} with bpmn:{definition} is not supported",
     N_("bpmn:%(kind)s with bpmn:%(definition)s is not supported")),
    ("{what} of type bpmn:{kind} is not supported",
     N_("elements of type bpmn:%(kind)s are not supported")),
    ("bpmn:{kind} on line {line} has no id", N_("the element on line %(line)s has no id")),
    ("mapping data to the task's own inputs/outputs (ioSpecification) is not supported; tasks see "
     "the whole process data", N_("mapping data to a task's own inputs and outputs is not "
                                  "supported; tasks see all the process data")),
    ("the flow loops back without a deciding gateway ({cycle}); route the loop through an "
     "exclusive gateway with a way out",
     N_("the flow loops back without a gateway that decides (%(cycle)s); route the loop through "
        "an exclusive gateway with a way out")),
    # compensation, events
    ("element {id}: compensation is not supported; model the undo steps as ordinary tasks (e.g. "
     "after an error boundary event)",
     N_("compensation is not supported; model the undo steps as ordinary tasks (for example "
        "after an error boundary event)")),
    ("the start event {id} of an event sub-process needs a message, timer, error, escalation or "
     "signal definition", N_("the start event of an event sub-process needs a message, timer, "
                             "error, escalation or signal")),
    ("intermediate event {id} needs a message, timer, signal or conditional definition",
     N_("the intermediate event needs a message, timer, signal or condition")),
    ("boundary event {id} needs an event definition",
     N_("the boundary event does not say what it waits for")),
    ("marshrut:select belongs on a timer start event",
     N_("record selection belongs on a timer start event")),
    ("an event may have only one event definition", N_("an event may wait for one thing only")),
    ("the {tag} event {id} refers to no bpmn:{tag2} ({attr})",
     N_("the %(tag)s event does not say which %(tag2)s it means (%(attr)s)")),
    ("the {tag} event {id} refers to bpmn:{tag2} '{ref}', which the file does not define",
     N_("the %(tag)s event refers to «%(ref)s», which the file does not define")),
    ("bpmn:signal {ref} has no name", N_("the signal %(ref)s has no name")),
    ("the conditional event {id} has no condition", N_("the conditional event has no condition")),
    ("bpmn:message {ref} has no name (the CRM event, e.g. deal.created)",
     N_("pick the CRM event that starts the process")),
    ("two start events react to '{name}'", N_("two start events react to «%(name)s»")),
    ("two start events react to signal '{name}'",
     N_("two start events react to the signal «%(name)s»")),
    ("marshrut:select: {problem}", N_("record selection: %(problem)s")),
    ("entity selection needs the CRM bridge (the engine has no selector)",
     N_("record selection needs the CRM (the engine alone cannot select records)")),
    ("start event {id} has no outgoing sequence flow",
     N_("no flow leaves the start event")),
    ("boundary event {id} is attached to no element of the process (attachedToRef)",
     N_("the boundary event is attached to no element of the process")),
    ("boundary event {id} is attached to a bpmn:{kind}; boundary {what} events are supported on "
     "{kinds}", N_("a boundary %(what)s event cannot sit on bpmn:%(kind)s; it can on %(kinds)s")),
    ("cancelActivity of {id} must be true or false, not '{value}'",
     N_("cancelActivity must be true or false, not «%(value)s»")),
    ("error boundary event {id} always interrupts its activity; remove cancelActivity=\"false\"",
     N_("an error boundary event always interrupts its activity; make it interrupting")),
    ("boundary event {id} cannot have incoming sequence flows",
     N_("no flow may lead into a boundary event")),
    # sub-processes, call activities
    ("event sub-process {id} cannot be drawn inside another event sub-process; draw it in the "
     "process or in an embedded sub-process",
     N_("an event sub-process cannot be drawn inside another event sub-process; draw it in the "
        "process or in an embedded sub-process")),
    ("event sub-process {id} needs exactly one start event",
     N_("an event sub-process needs exactly one start event")),
    ("event sub-process {id} cannot have sequence flows in or out; its start event triggers it",
     N_("no flow may lead into or out of an event sub-process; its start event starts it")),
    ("event sub-process {id} cannot have boundary events",
     N_("an event sub-process cannot have boundary events")),
    ("sub-process {id} has no start event", N_("the sub-process has no start event")),
    ("sub-process {id} has several start events; give it one",
     N_("the sub-process has several start events; leave one")),
    ("sub-process {id} has no end event", N_("the sub-process has no end event")),
    ("call activity {id} names no process (calledElement)",
     N_("the call activity does not say which process it calls")),
    ("call activity {id} calls its own process", N_("the call activity calls its own process")),
    ("call activities are checked against the deployed processes; validate with a database "
     "session", N_("call activities are checked against the deployed processes; check the "
                   "process in the editor")),
    ("process '{key}' is called in two versions ({a} and {b}); call one version of a process",
     N_("the process «%(key)s» is called in two versions (%(a)s and %(b)s); call one version")),
    ("marshrut:version of {id} must be a version number, not '{value}'",
     N_("the called version must be a number, not «%(value)s»")),
    ("call activity {id} calls version {version} of process '{key}', which is not deployed",
     N_("version %(version)s of the process «%(key)s» is called but not deployed")),
    ("call activity {id} calls process '{key}', which is not deployed",
     N_("the process «%(key)s» is called but not deployed")),
    ("process '{key}' calls '{caller}' back: recursive calls are not supported",
     N_("the process «%(key)s» calls «%(caller)s» back; recursive calls are not supported")),
    ("bpmn:{kind} {id} refers to no bpmn:message (messageRef)",
     N_("pick the CRM event the task waits for")),
    # loops and multi-instance
    ("only activities can loop; {id} is a bpmn:{kind}", N_("only tasks and sub-processes can loop")),
    ("the loop of {id} needs loopMaximum, a whole number of at least 1 (a limit, so a loop cannot "
     "run for ever)", N_("the loop needs a maximum number of rounds (a whole number of at least "
                         "1), so that it cannot run for ever")),
    ("only activities can be multi-instance; {id} is a bpmn:{kind}",
     N_("only tasks and sub-processes can run for several items")),
    ("isSequential of {id} must be true or false, not '{value}'",
     N_("isSequential must be true or false, not «%(value)s»")),
    ("multi-instance {id} needs exactly one of loopCardinality (how many times) or "
     "loopDataInputRef (the list in the data to go over)",
     N_("a multi-instance task needs either how many times to run or the list to go over, not "
        "both")),
    ("the loopCardinality of {id} is empty", N_("the number of times to run is empty")),
    ("loopDataInputRef of {id} must name a variable of the data (e.g. products), not '{value}'",
     N_("the list to go over must be a variable of the data (for example products), not "
        "«%(value)s»")),
    ("multi-instance {id} needs an inputDataItem naming the variable that holds the current "
     "element (e.g. product)", N_("name the variable that holds the current item (for example "
                                  "product)")),
    ("multi-instance {id}: loopDataOutputRef and outputDataItem go together (the result list and "
     "the variable each instance sets)", N_("the result list and the variable each run sets go "
                                            "together; give both or neither")),
    # tasks
    ("script task has no script", N_("the script task has no code")),
    ("business rule task names no decision (marshrut:decision)",
     N_("the business rule task does not say which decision table it uses")),
    ("decision '{ref}' is not in the uploaded DMN files ({known})",
     N_("the decision table «%(ref)s» is not among the uploaded DMN files (%(known)s)")),
    ("assignment: {problem}", N_("assignment: %(problem)s")),
    # flows and gateways
    ("sequence flow {id} crosses the border of a sub-process; connect elements inside the same "
     "(sub-)process", N_("the flow crosses the border of a sub-process; connect elements inside "
                         "the same process or sub-process")),
    ("sequence flow {id} has a condition but leaves a bpmn:{kind}; only gateway flows may have "
     "conditions", N_("only flows leaving a gateway may have conditions")),
    ("sequence flow {id} is the gateway's default and cannot have a condition",
     N_("the gateway's default flow cannot have a condition")),
    ("default flow '{id}' does not leave gateway {gateway}",
     N_("the default flow «%(id)s» does not leave this gateway")),
    # DMN
    ("DMN file {n} has no dmn:decision", N_("DMN file %(n)s has no decision table")),
    ("DMN file {n} has several decisions; put one decision per file",
     N_("DMN file %(n)s has several decision tables; put one table per file")),
    ("a decision in DMN file {n} has no id", N_("a decision table in DMN file %(n)s has no id")),
    ("decision id used twice", N_("two decision tables have the same id")),
    ("rule {n} of decision {id}: cell '{cell}' is not a valid test",
     N_("rule %(n)s of the decision table: the cell «%(cell)s» is not a valid test")),
    ("decision {id}: unknown hit policy '{policy}' (known: {known})",
     N_("decision table: unknown hit policy «%(policy)s» (known: %(known)s)")),
    ("decision {id}: aggregation {aggregation} needs hit policy COLLECT",
     N_("decision table: the aggregation %(aggregation)s needs the COLLECT hit policy")),
    ("decision {id}: unknown aggregation '{aggregation}' (known: {known})",
     N_("decision table: unknown aggregation «%(aggregation)s» (known: %(known)s)")),
    ("decision {id}: COLLECT {aggregation} needs exactly one output",
     N_("decision table: COLLECT %(aggregation)s needs exactly one output")),
    ("decision {id}, output {output}: {problem}",
     N_("decision table, output %(output)s: %(problem)s")),
    ("decision {id}: hit policy {policy} needs outputValues on an output (the priority order of "
     "its values)", N_("decision table: the hit policy %(policy)s needs the list of output "
                       "values (their order of priority)")),
    # timers
    ("the timer needs exactly one of timeDuration, timeDate or timeCycle",
     N_("the timer needs exactly one of: a duration, a date or a cycle")),
    ("marshrut:businessHours must be true or false, not '{value}'",
     N_("«business hours» must be true or false, not «%(value)s»")),
    ("marshrut:timezone: {problem}", N_("time zone: %(problem)s")),
    ("the timer has more than one of timeDuration, timeDate, timeCycle",
     N_("the timer needs exactly one of: a duration, a date or a cycle")),
    ("the timer's {what} is empty", N_("the timer's time is empty")),
    ("a timer start event needs a timeCycle (ISO repeating interval or cron) or a timeDate, not a "
     "timeDuration", N_("a timer start event needs a cycle (such as R/PT1H or a cron line) or a "
                        "date, not a duration")),
    ("timeCycle is for timer start events and non-interrupting boundary timers; use a "
     "timeDuration or timeDate here",
     N_("a cycle is for timer start events and non-interrupting boundary timers; use a "
        "duration or a date here")),
    ("boundary timer {id} interrupts its activity, so it fires once: a timeCycle is for a "
     "non-interrupting boundary timer (cancelActivity=\"false\"); use a timeDuration or "
     "timeDate here",
     N_("the boundary timer %(id)s interrupts its activity, so it fires once: a cycle is for "
        "a non-interrupting boundary timer; use a duration or a date here")),
    ("an interrupting event sub-process starts once: a timeCycle is for a non-interrupting one "
     "(isInterrupting=\"false\"); use a timeDuration or timeDate here",
     N_("an interrupting event sub-process starts once: a cycle is for a non-interrupting one; "
        "use a duration or a date here")),
    ("marshrut:select belongs on the timer start event of a process",
     N_("choosing records belongs on the timer start event of a process")),
    ("marshrut:businessHours applies to a timeDuration only",
     N_("«business hours» apply to a duration only")),
    # the extension elements (engine.extensions)
    ("user task has no assignment (marshrut:assignment)",
     N_("the task does not say who gets it (Assignment)")),
    ("unknown assignment '{kind}'; use one of {kinds}",
     N_("unknown assignment «%(kind)s»; use one of %(kinds)s")),
    ("assignment '{kind}' needs marshrut:assignee",
     N_("the assignment «%(kind)s» needs an assignee")),
    ("marshrut:outOfOffice must be deputy or skip, not '{value}'",
     N_("«out of office» must be deputy or skip, not «%(value)s»")),
    ("marshrut:priority must be low, normal or high, not '{value}'",
     N_("the priority must be low, normal or high, not «%(value)s»")),
    ("marshrut:priority must be an integer, not '{value}'",
     N_("the priority must be a whole number, not «%(value)s»")),
    ("marshrut:due: {problem}", N_("due time: %(problem)s")),
    ("form field '{name}' is defined twice", N_("the form field «%(name)s» is defined twice")),
    ("form field name '{name}' must be a letter followed by letters, digits or '_'",
     N_("the form field name «%(name)s» must start with a letter and hold only letters, digits "
        "and «_»")),
    ("form field '{name}' has unknown type '{type}'",
     N_("the form field «%(name)s» has an unknown type «%(type)s»")),
    ("form field '{name}' of type {type} needs marshrut:option children",
     N_("the form field «%(name)s» (%(type)s) needs options to choose from")),
    ("form field '{name}' has an option without a value",
     N_("the form field «%(name)s» has an option without a value")),
    ("service task has no operation (marshrut:operation)", N_("the action has no operation chosen")),
    ("parameter '{name}' is given twice", N_("the parameter «%(name)s» is given twice")),
    ("parameter '{name}' needs exactly one of value or expression",
     N_("the parameter «%(name)s» needs either a value or an expression, not both")),
    ("variable name '{name}' must be a letter followed by letters, digits or '_'",
     N_("the variable name «%(name)s» must start with a letter and hold only letters, digits and "
        "«_»")),
    ("variable '{name}': {problem}", N_("variable «%(name)s»: %(problem)s")),
    ("a start event may have one marshrut:select only",
     N_("a start event may have one record selection only")),
    ("marshrut:select needs entity (deal, lead, contact or company)",
     N_("record selection needs the kind of record (deal, lead, contact or company)")),
    ("marshrut:select idleDays must be a whole number of days from 1 to 3650, not '{value}'",
     N_("the idle days of the selection must be a whole number from 1 to 3650, not «%(value)s»")),
    ("marshrut:select openOnly must be true or false, not '{value}'",
     N_("«open only» of the selection must be true or false, not «%(value)s»")),
    ("marshrut:filter needs name and value", N_("a selection filter needs a field and a value")),
    # a problem in an expression: what it is, then the sandbox's words
    ("{what}: {problem}", N_("%(what)s: %(problem)s")),
]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _compile(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)
    rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(f"^{rx}$", re.S)


COMPILED = [(_compile(t), msgid) for t, msgid in TEMPLATES]
#: What an expression problem is about (``{what}`` above).
WHAT = [(re.compile(r"^condition of flow \S+$"), N_("the flow's condition")),
        (re.compile(r"^condition$"), N_("the condition")),
        (re.compile(r"^input expression$"), N_("the input expression")),
        (re.compile(r"^output of rule (?P<n>\d+)$"), N_("the output of rule %(n)s")),
        (re.compile(r"^loop condition$"), N_("the loop condition")),
        (re.compile(r"^loop cardinality$"), N_("the number of times to run")),
        (re.compile(r"^completion condition$"), N_("the completion condition")),
        (re.compile(r"^parameter '(?P<name>.*)'$"), N_("the parameter «%(name)s»")),
        (re.compile(r"^placeholder (?P<p>.*)$"), N_("the placeholder %(p)s")),
        (re.compile(r"^script$"), N_("the script"))]


def _what(text: str) -> str:
    for pattern, msgid in WHAT:
        m = pattern.match(text)
        if m:
            return gettext(msgid, **m.groupdict())
    return text


def _from_templates(message: str) -> str | None:
    for pattern, msgid in COMPILED:
        m = pattern.match(message)
        if m:
            values = m.groupdict()
            if "what" in values and msgid.startswith("%(what)s"):
                values["what"] = _what(values["what"])
            return gettext(msgid, **values)
    return None
