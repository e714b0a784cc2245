"""The ``Engine``: deploy definitions, start and run instances, user tasks, incidents.

Collaborators come through the constructor (no module singletons)::

    engine = Engine(registry=ServiceRegistry(), assigner=MyAssigner(), clock=SystemClock(),
                    calendar=BusinessCalendar(), selector=MySelector())

Every method that touches the database takes the caller's ``Session`` and never commits: the
caller commits, so process state, task rows, history and the CRM writes of service tasks
land together or not at all. Results are ORM rows from ``engine.store``. A unit of work on an
instance writes the engine's own rows with Core in one write phase (``InstanceRun.save``:
the instance UPDATE checked against its ``version``, history, task rows, timers), not by an
ORM flush; the returned objects hold what was written.

Public API (errors from ``engine.errors``):

Definitions
  ``validate(bpmn_xml, dmn_xmls=(), *, session=None) -> list[ValidationError]``
  ``deploy(session, bpmn_xml, dmn_xmls=(), deployed_by=None, activate=True)
  -> ProcessDefinition`` — raises ``DefinitionInvalid(errors)``
  ``activate(session, key, version) -> ProcessDefinition``;
  ``deactivate(session, key, version=None) -> None`` — both (re)arm the timer start events'
  schedules: only the active version's schedules fire
  ``definition(session, definition_id)``; ``definitions(session, key=None, active=None)``
  ``definitions_for_message(session, message) -> list[ProcessDefinition]`` — active ones
  started by ``message``, ordered by (priority, key)
Instances
  ``start(session, definition, StartRequest) -> ProcessInstance`` — ``AlreadyStarted`` if
  this (event_id, definition) already started one; ``StartRequest(timer=element)`` is how a
  fired schedule starts one
  ``send_message(session, instance_id, message, payload=None) -> ProcessInstance``
  ``throw_signal(session, signal, payload=None, *, entity_type=None, entity_id=None,
  event_id=None) -> (moved ids, started ids)`` — a broadcast from outside any instance
  ``retry(session, instance_id, user_id=None)``; ``cancel(session, instance_id,
  user_id=None, reason="")``; ``run_due_retries(session) -> int``
  ``instance(session, id)``; ``instances(session, *, entity_type=None, entity_id=None,
  status=None, definition_key=None)``; ``instance_data(session, id) -> dict``;
  ``waiting_events(session, id) -> list[dict]``; ``history(session, id)``
Timers (``engine.timer_service``, run by ``engine.scheduler``)
  ``timer_service`` keeps the ``timer`` table (due times of waiting timers and of schedules);
  ``TimerRunner(engine, sessionmaker).run_due()`` fires what is due
User tasks (``engine.tasks``)
  ``task(session, id)``; ``tasks(session, *, instance_id=None, statuses=ACTIVE)``;
  ``inbox(session, user_id)``; ``inbox_page(session, user_id, *, limit, after=None,
  scope="all") -> InboxPage(tasks, next)`` (keyset pages, ``BadCursor`` naming ``after``);
  ``inbox_count(session, user_id, *, scope="all")``; ``inbox_slice(session, user_id, *,
  offset, limit)`` (by offset, for Bitrix24's ``start``); ``claim(session, task_id, user_id)``;
  ``unclaim(session, task_id, user_id)``; ``delegate(session, task_id, from_user, to_user)``;
  ``complete(session, task_id, user_id, data) -> ProcessTask`` — ``InvalidTaskData(fields)``,
  ``NotAllowed``, ``Conflict``, ``TaskNotReady``
Services
  ``registry.specs()`` lists the operations for the editor.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from .calendar import BusinessCalendar
from .correlation import Correlator
from .data import data_size, to_json
from .errors import AlreadyStarted, Conflict, DefinitionInvalid, EngineError, NotFound
from .executor import DEFAULT_DATA_LIMIT, FINAL_DATA, InstanceRun
from .persistence import add_history, conflicts_guarded, lock_instance
from .ports import Assigner, Clock, ConditionChecker, EntitySelector, StartRequest, SystemClock
from .prefilter import StartFilter
from .prefilter import derive as derive_start_filter
from .sandbox import Limits, Sandbox
from .scripting import SandboxScriptEngine
from .serialization import WorkflowSerializer
from .services import ServiceRegistry
from .store import ProcessDefinition, ProcessHistory, ProcessInstance, Status, TaskStatus
from .tasks import TaskActions, withdraw_candidates
from .timer_service import TimerService
from .validation import Compiler, ValidationError


class Engine(TaskActions):
    """Marshrut's BPMN runtime (see the module docstring for the API)."""

    def __init__(self, *, registry: ServiceRegistry, assigner: Assigner,
                 clock: Clock | None = None, serializer: WorkflowSerializer | None = None,
                 limits: Limits | None = None,
                 retry_delays: Sequence[float] = (1.0, 5.0),
                 calendar: BusinessCalendar | None = None,
                 selector: EntitySelector | None = None,
                 data_limit: int | None = DEFAULT_DATA_LIMIT,
                 conditions: ConditionChecker | None = None, prefilter: bool = True) -> None:
        """``retry_delays``: seconds before the 2nd, 3rd … attempt of a failing service call
        (so the default is 3 attempts: now, +1 s, +5 s). ``calendar``: working time for
        business-hours timers; its time zone is also the default of timers and schedules
        written without ``marshrut:timezone``. ``selector``: finds the CRM records a
        scheduled start runs for (``marshrut:select``). ``data_limit``: bytes of JSON that an
        instance's data (each step's, and its whole stored state) may reach; past it the
        instance becomes an incident naming the element that grew it (None: no limit).
        ``conditions``: type checks of gateway conditions against the data's schema, run on
        validate and deploy."""
        self.registry = registry
        self.assigner = assigner
        self.clock: Clock = clock or SystemClock()
        self.serializer = serializer or WorkflowSerializer()
        self.sandbox = Sandbox(limits)
        self.retry_delays = tuple(retry_delays)
        self.calendar = calendar or BusinessCalendar()
        self.selector = selector
        self.data_limit = data_limit
        self.conditions = conditions
        self.compiler = Compiler(registry, self.sandbox, assigner, selector=selector,
                                 default_timezone=self.calendar.timezone, conditions=conditions)
        self.timer_service = TimerService(self)
        #: CRM events to the running instances of their record (``engine.correlation``)
        self.correlator = Correlator(self)
        #: ``engine.prefilter``: a start whose condition cannot match skips the workflow run
        #: (False: every start runs the workflow, e.g. to compare the two in a test)
        self.prefilter = prefilter
        self._start_filters: dict[tuple[Any, ...], StartFilter | None] = {}
        #: id(request) → (request, definition, ``_prepare`` result) of a start request that
        #: ``start_if_filtered`` found must run; ``start`` takes it (dispatcher threads use
        #: requests of their own, so ids of live requests cannot collide)
        self._checked: dict[int, tuple[StartRequest, ProcessDefinition, Any]] = {}

    # ------------------------------------------------------------ definitions
    def validate(self, bpmn_xml: str | bytes, dmn_xmls: Sequence[str | bytes] = (), *,
                 session: Session | None = None) -> list[ValidationError]:
        """Everything wrong with a definition ([] if it can be deployed). With a session the
        assignments are also checked against the org chart (``Assigner.validate``)."""
        return self.compiler.compile(bpmn_xml, tuple(dmn_xmls), session)[1]

    def deploy(self, session: Session, bpmn_xml: str | bytes,
               dmn_xmls: Sequence[str | bytes] = (), deployed_by: int | None = None,
               activate: bool = True) -> ProcessDefinition:
        """Store a new version of the process (key = the bpmn:process id).

        Raises ``DefinitionInvalid`` listing every problem. With ``activate`` the new version
        becomes the one events start; running instances stay on their own version.
        """
        compiled, errors = self.compiler.compile(bpmn_xml, tuple(dmn_xmls), session)
        if compiled is None:
            raise DefinitionInvalid(errors)
        latest = session.scalar(select(func.max(ProcessDefinition.version))
                                .where(ProcessDefinition.key == compiled.key)) or 0
        text = bpmn_xml if isinstance(bpmn_xml, str) else bpmn_xml.decode("utf-8", "replace")
        row = ProcessDefinition(
            key=compiled.key, version=latest + 1, name=compiled.name, bpmn_xml=text,
            dmn_xml=compiled.dmn_xml,
            specs={self.serializer.version: self.serializer.spec_to_dict(
                compiled.spec, compiled.subprocess_specs)},
            triggers=compiled.triggers, manual_start=compiled.manual_start,
            variables=compiled.variables, priority=compiled.priority, active=False,
            schedules=compiled.schedules, catches=compiled.catches or None,
            signal_starts=compiled.signal_starts or None, deployed_by=deployed_by,
            deployed_at=self.clock.now())
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise Conflict(f"another version of {compiled.key} was deployed at the same time; "
                           "deploy again") from None
        if activate:
            self.activate(session, compiled.key, row.version)
        return row

    def activate(self, session: Session, key: str, version: int) -> ProcessDefinition:
        """Make ``version`` the active one of ``key`` (others of the key are deactivated)."""
        rows = session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                               .with_for_update()).all()
        target = next((r for r in rows if r.version == version), None)
        if target is None:
            raise NotFound(f"process {key} has no version {version}")
        for r in rows:
            r.active = r is target
        session.flush()
        self.timer_service.sync_schedules(session, key)
        return target

    def deactivate(self, session: Session, key: str, version: int | None = None) -> None:
        """Stop new starts of ``key`` (of one ``version`` only, if given)."""
        q = select(ProcessDefinition).where(ProcessDefinition.key == key)
        if version is not None:
            q = q.where(ProcessDefinition.version == version)
        rows = session.scalars(q).all()
        if not rows:
            raise NotFound(f"process {key} not found")
        for r in rows:
            r.active = False
        session.flush()
        self.timer_service.sync_schedules(session, key)

    def definition(self, session: Session, definition_id: int) -> ProcessDefinition:
        row = session.get(ProcessDefinition, definition_id)
        if row is None:
            raise NotFound(f"process definition {definition_id} not found")
        return row

    def definitions(self, session: Session, key: str | None = None,
                    active: bool | None = None) -> list[ProcessDefinition]:
        q = select(ProcessDefinition).order_by(ProcessDefinition.key,
                                               ProcessDefinition.version)
        if key is not None:
            q = q.where(ProcessDefinition.key == key)
        if active is not None:
            q = q.where(ProcessDefinition.active.is_(active))
        return list(session.scalars(q))

    def definitions_for_message(self, session: Session, message: str
                                ) -> list[ProcessDefinition]:
        rows = [d for d in self.definitions(session, active=True) if message in d.triggers]
        return sorted(rows, key=lambda d: (d.priority, d.key))

    def definitions_for_signal(self, session: Session, signal: str) -> list[ProcessDefinition]:
        """Active definitions with a signal start event for ``signal``, by (priority, key)."""
        rows = [d for d in self.definitions(session, active=True)
                if signal in (d.signal_starts or ())]
        return sorted(rows, key=lambda d: (d.priority, d.key))

    # -------------------------------------------------------------- instances
    def start(self, session: Session, definition: ProcessDefinition,
              request: StartRequest, *, history: Sequence[dict[str, Any]] = ()
              ) -> ProcessInstance:
        """Start an instance and run it to its first wait state (in the caller's transaction).

        ``request.message`` picks the message start event (None = the manual start event);
        start data are JSON (Decimal/date are converted). An instance that fails while
        running is returned with status ``incident`` — this does not raise.

        ``history``: ``process_history`` rows a caller deferred (``start_if_filtered``'s),
        written in the same statement as this instance's own history — or not at all if
        this call raises (the caller writes them then, ``write_history``).
        """
        checked = self._checked.pop(id(request), None)
        if checked is not None and checked[0] is request and checked[1] is definition:
            # ``start_if_filtered`` has just prepared it and found it must run: not again
            data, row, started = checked[2]
        else:
            data, row, started = self._prepare(definition, request)
            skipped = self._start_skipped(session, definition, request, data, row, started,
                                          history=list(history))
            if skipped is not None:
                return skipped
        message, timer, signal = request.message, request.timer, request.signal
        with conflicts_guarded():
            inst = _insert_instance(session, row)  # the (event, definition) pair is unique
            if inst is None:
                raise AlreadyStarted(f"event {request.event_id} already started process "
                                     f"{definition.key} v{definition.version}")
            wf = self.serializer.new_workflow(
                lambda: self._spec_entry(session, definition, self.serializer.version),
                self._script_engine(), cache_key=spec_cache_key(definition))
            wf.task_tree.data.update(data)
            run = InstanceRun(self, session, inst, definition, wf, fresh=True)
            run.carry_history(history)
            run.record("started", None, started, request.started_by)
            run.start_on(message, timer, signal)
            run.advance()
            run.save()
            session.flush()
        return inst

    def _prepare(self, definition: ProcessDefinition, request: StartRequest
                 ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Check a start request; (start data, instance row, the ``started`` history text)."""
        if not definition.active:
            raise EngineError(f"process {definition.key} v{definition.version} is not active")
        message, timer, signal = request.message, request.timer, request.signal
        if message is not None and message not in definition.triggers:
            raise EngineError(f"process {definition.key} does not start on '{message}'")
        if signal is not None and (message is not None or timer is not None
                                   or signal not in (definition.signal_starts or ())):
            raise EngineError(f"process {definition.key} does not start on signal '{signal}'")
        if timer is not None and (message is not None or timer not in {
                s["element_id"] for s in definition.schedules or []}):
            raise EngineError(f"process {definition.key} has no timer start event {timer}")
        if message is None and timer is None and signal is None \
                and not definition.manual_start:
            raise EngineError(f"process {definition.key} has no manual start; it starts on "
                              + ", ".join([*definition.triggers, *(
                                  f"signal '{n}'" for n in definition.signal_starts or ())]))
        data = to_json(request.data, where="start data")
        if not isinstance(data, dict):
            raise EngineError("start data must be a JSON object")
        data.update(definition.variables)  # process constants win over entity data
        row = {"definition_id": definition.id, "status": Status.RUNNING,
               "entity_type": request.entity_type, "entity_id": request.entity_id,
               "event_id": request.event_id, "state": None,
               "serializer_version": self.serializer.version, "version": 1, "waiting": [],
               "started_by": request.started_by, "started_at": self.clock.now(),
               "incident_attempts": 0}
        who = f"user {request.started_by}" if request.started_by else "the system"
        how = (f"on '{message}'" if message else f"by the schedule of {timer}" if timer
               else f"by signal '{signal}'" if signal else "manually")
        started = f"v{definition.version} started by {who} {how}"
        return data, row, started

    def start_if_filtered(self, session: Session, definition: ProcessDefinition,
                          request: StartRequest, *,
                          history: list[dict[str, Any]] | None = None
                          ) -> ProcessInstance | None:
        """The pre-filtered start alone (``engine.prefilter``): when the request's start
        condition cannot match, write its rows and return the instance; otherwise write
        nothing and return None (call ``start``, which also reports a bad request). Writes
        no CRM data and fails on nothing but the database: a duplicate start is skipped by
        its INSERT (``AlreadyStarted``), so a caller needs no savepoint around it.

        ``history``: a list to append the instance's history rows to instead of writing
        them (the caller writes them later in this transaction: with the next ``start``'s,
        or by ``write_history``)."""
        try:
            prepared = self._prepare(definition, request)
        except EngineError:
            return None
        inst = self._start_skipped(session, definition, request, *prepared, defer=history)
        if inst is None:  # ``start`` follows with the same request: it reuses the check
            if len(self._checked) > 100:
                self._checked.clear()
            self._checked[id(request)] = (request, definition, prepared)
        return inst

    def _start_skipped(self, session: Session, definition: ProcessDefinition,
                       request: StartRequest, data: dict[str, Any], row: dict[str, Any],
                       started: str, *, history: list[dict[str, Any]] | None = None,
                       defer: list[dict[str, Any]] | None = None) -> ProcessInstance | None:
        message = request.message
        start_filter = self._start_filter(session, definition, message) if message else None
        if start_filter is not None and self._filtered_out(start_filter, data):
            # The start condition cannot match: the rows the full run would write for
            # this outcome, without running the workflow (``engine.prefilter``).
            with conflicts_guarded():
                row.update(status=Status.COMPLETED, state={FINAL_DATA: data}, ended_at=row[
                    "started_at"])
                inst = _insert_instance(session, row)
                if inst is None:
                    raise AlreadyStarted(f"event {request.event_id} already started process "
                                         f"{definition.key} v{definition.version}")
                at = row["started_at"]
                rows = [{"instance_id": inst.id, "at": at, "event": event,
                         "element_id": element, "user_id": user_id, "message": text,
                         "changes": None}
                        for event, element, text, user_id in
                        [("started", None, started, request.started_by)]
                        + [(*h, None) for h in start_filter.history()]]
                if defer is not None:
                    defer.extend(rows)
                else:
                    self.write_history(session, [*(history or ()), *rows])
            return inst
        return None

    @staticmethod
    def write_history(session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """INSERT ``process_history`` rows (one statement; nothing when there are none)."""
        if rows:
            session.connection().execute(_HISTORY_INSERT, list(rows))

    def send_message(self, session: Session, instance_id: int, message: str,
                     payload: dict[str, Any] | None = None) -> ProcessInstance:
        """Deliver ``message`` to an instance waiting for it (intermediate/event-based
        gateway catch events); ``payload`` is merged into the data."""
        with conflicts_guarded():
            inst = lock_instance(session, instance_id)
            if inst.status not in Status.OPEN:
                raise Conflict(f"instance {instance_id} is {inst.status}")
            run = self._load(session, inst)
            run.deliver(message, to_json(payload or {}, where="payload"))
            run.advance()
            run.save()
            session.flush()
        return inst

    def throw_signal(self, session: Session, signal: str,
                     payload: dict[str, Any] | None = None, *, entity_type: str | None = None,
                     entity_id: int | None = None, event_id: int | None = None
                     ) -> tuple[list[int], list[int]]:
        """Broadcast ``signal`` as a throw event would (``engine.correlation``): the waiting
        catches of every running instance get it, and each active definition with a signal
        start event for it starts once, with ``payload`` as data. ``event_id``: the event
        that caused it — the same id again starts nothing twice. Returns (the ids of the
        instances that moved, the ids of the instances started)."""
        if not signal or not signal.strip():
            raise EngineError("a signal needs a name")
        data = to_json(payload or {}, where="payload")
        if not isinstance(data, dict):
            raise EngineError("the payload of a signal must be a JSON object")
        return self.correlator.throw(session, signal.strip(), data, entity_type=entity_type,
                                     entity_id=entity_id, event_id=event_id)

    def retry(self, session: Session, instance_id: int,
              user_id: int | None = None) -> ProcessInstance:
        """Run the failed element of an instance again (admins; also skips a retry wait)."""
        with conflicts_guarded():
            inst = lock_instance(session, instance_id)
            if inst.status not in Status.OPEN or not inst.incident_element_id:
                raise Conflict(f"instance {instance_id} has no incident to retry")
            run = self._load(session, inst)
            run.record("retried", inst.incident_element_id,
                       f"retried by user {user_id}" if user_id else "retried", user_id)
            run.reset_failures()
            run.advance()
            run.save()
            session.flush()
        return inst

    def cancel(self, session: Session, instance_id: int, user_id: int | None = None,
               reason: str = "") -> ProcessInstance:
        """Stop an instance for good; its open tasks are withdrawn."""
        with conflicts_guarded():
            inst = lock_instance(session, instance_id)
            if inst.status not in Status.OPEN:
                raise Conflict(f"instance {instance_id} is already {inst.status}")
            now = self.clock.now()
            try:
                run: InstanceRun | None = self._load(session, inst)
            except EngineError:
                run = None  # an unloadable state must still be cancellable
            if run is not None:
                run.wf.cancel()
            inst.status, inst.ended_at = Status.CANCELLED, now
            inst.incident_element_id = inst.incident_message = inst.incident_retry_at = None
            self.timer_service.cancel_instance(session, instance_id)
            open_rows = self.tasks(session, instance_id=instance_id)
            withdraw_candidates(session, open_rows)
            for row in open_rows:
                row.status, row.completed_at = TaskStatus.CANCELLED, now
            add_history(session, inst.id, now, "cancelled", None,
                        (f"cancelled by user {user_id}" if user_id else "cancelled")
                        + (f": {reason}" if reason else ""), user_id)
            if run is not None:
                run.save()
            session.flush()
        return inst

    def run_due_retries(self, session: Session) -> int:
        """Retry every service call whose back-off has passed; returns instances advanced."""
        now = self.clock.now()
        ids = session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.status == Status.WAITING,
            ProcessInstance.incident_retry_at <= now)
            .order_by(ProcessInstance.incident_retry_at)).all()
        done = 0
        for instance_id in ids:
            with conflicts_guarded():
                inst = lock_instance(session, instance_id)
                if inst.incident_retry_at is None or inst.incident_retry_at > now:
                    continue  # someone else got there first
                run = self._load(session, inst)
                run.advance()
                run.save()
                session.flush()
                done += 1
        return done

    # ----------------------------------------------------------------- queries
    def instance(self, session: Session, instance_id: int) -> ProcessInstance:
        inst = session.get(ProcessInstance, instance_id)
        if inst is None:
            raise NotFound(f"process instance {instance_id} not found")
        return inst

    def instances(self, session: Session, *, entity_type: str | None = None,
                  entity_id: int | None = None, status: str | None = None,
                  definition_key: str | None = None) -> list[ProcessInstance]:
        q = select(ProcessInstance).order_by(ProcessInstance.id)
        if entity_type is not None:
            q = q.where(ProcessInstance.entity_type == entity_type)
        if entity_id is not None:
            q = q.where(ProcessInstance.entity_id == entity_id)
        if status is not None:
            q = q.where(ProcessInstance.status == status)
        if definition_key is not None:
            q = q.join(ProcessDefinition).where(ProcessDefinition.key == definition_key)
        return list(session.scalars(q))

    def instance_data(self, session: Session, instance_id: int) -> dict[str, Any]:
        """The process data: final data when completed, else the latest task's data."""
        inst = self.instance(session, instance_id)
        if isinstance(inst.state, dict) and FINAL_DATA in inst.state:
            return dict(inst.state[FINAL_DATA])
        return self._load(session, inst).frontier_data()

    def waiting_events(self, session: Session, instance_id: int) -> list[dict[str, Any]]:
        """What the instance waits for: ``[{"event", "type", "element", "value"}]`` — message
        names, and timers (type ``TimerEventDefinition``, element = the timer event) with
        their due time (UTC ISO) as ``value``."""
        return list(self.instance(session, instance_id).waiting or [])

    def history(self, session: Session, instance_id: int) -> list[ProcessHistory]:
        self.instance(session, instance_id)
        return list(session.scalars(select(ProcessHistory)
                                    .where(ProcessHistory.instance_id == instance_id)
                                    .order_by(ProcessHistory.id)))

    # ---------------------------------------------------------------- helpers
    def _start_filter(self, session: Session, definition: ProcessDefinition,
                      message: str) -> StartFilter | None:
        """The pre-filter of ``message``'s start in this definition version (derived from
        its diagram once, kept while the process runs; None: no pre-filter)."""
        key = (spec_cache_key(definition), self.serializer.version, message)
        try:
            return self._start_filters[key]
        except KeyError:
            pass
        if not self.prefilter:
            found = None
        else:
            spec, subs = self.serializer.specs(
                lambda: self._spec_entry(session, definition, self.serializer.version),
                cache_key=spec_cache_key(definition))
            found = derive_start_filter(spec, subs, message)
        if len(self._start_filters) > 1000:
            self._start_filters.clear()
        self._start_filters[key] = found
        return found

    def _filtered_out(self, start_filter: StartFilter, data: dict[str, Any]) -> bool:
        if self.data_limit is not None and data_size(data) > self.data_limit:
            return False  # the full run names the element that holds too much
        return start_filter.skips(self.sandbox, data)

    def _script_engine(self) -> SandboxScriptEngine:
        return SandboxScriptEngine(self.sandbox)

    def _spec_entry(self, session: Session, definition: ProcessDefinition,
                    version: str) -> dict[str, Any]:
        """The definition's spec written with serializer ``version``.

        After a library upgrade the current version may be missing: it is re-parsed from the
        stored BPMN/DMN (the source of truth) and kept, once, on the definition row.
        """
        specs = definition.specs or {}
        if version in specs:
            return specs[version]
        if version != self.serializer.version:
            raise EngineError(f"no spec of {definition.key} v{definition.version} for "
                              f"serializer {version}")
        compiled, errors = self.compiler.compile(definition.bpmn_xml, definition.dmn_xml,
                                                 session)
        if compiled is None:
            raise EngineError(f"{definition.key} v{definition.version} no longer parses: "
                              + "; ".join(str(e) for e in errors))
        entry = self.serializer.spec_to_dict(compiled.spec, compiled.subprocess_specs)
        definition.specs = {**specs, version: entry}
        return entry

    def _load(self, session: Session, instance: ProcessInstance) -> InstanceRun:
        definition = self.definition(session, instance.definition_id)
        if instance.state is None:
            raise EngineError(f"instance {instance.id} has no saved state")
        if FINAL_DATA in instance.state:
            raise EngineError(f"instance {instance.id} has finished; only its data is kept")
        version = instance.serializer_version
        try:
            wf = self.serializer.restore(
                lambda: self._spec_entry(session, definition, version), instance.state,
                version, self._script_engine(), cache_key=spec_cache_key(definition))
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"instance {instance.id} cannot be loaded: {exc}") from exc
        return InstanceRun(self, session, instance, definition, wf)


_INSTANCE = ProcessInstance.__table__
_INSTANCE_ID = _INSTANCE.c.id
_HISTORY_INSERT = ProcessHistory.__table__.insert()
#: ``INSERT … ON CONFLICT DO NOTHING RETURNING id``: a second start of an (event, definition)
#: pair returns no row, and needs no savepoint around it (PostgreSQL, SQLite ≥ 3.35).
_INSERT_UNLESS_STARTED = {
    "postgresql": pg_insert(_INSTANCE).on_conflict_do_nothing().returning(_INSTANCE_ID),
    "sqlite": sqlite_insert(_INSTANCE).on_conflict_do_nothing().returning(_INSTANCE_ID),
}
_INSERT_INSTANCE = insert(_INSTANCE).returning(_INSTANCE_ID)
_INSTANCE_DEFAULTS = {"ended_at": None, "incident_element_id": None, "incident_message": None,
                      "incident_retry_at": None}


def _insert_instance(session: Session, row: dict[str, Any]) -> ProcessInstance | None:
    """INSERT the row and attach it as a persistent, fully loaded object (cheaper than a
    unit-of-work flush or an ORM RETURNING load; later changes update it as usual). None if
    its (event, definition) pair has started already."""
    stmt = _INSERT_UNLESS_STARTED.get(session.get_bind().dialect.name)
    if stmt is not None:
        # on the session's connection: a Core statement needs none of Session.execute
        new_id = session.connection().execute(stmt, row).scalar_one_or_none()
    else:  # another database: the constraint violation, inside a savepoint
        try:
            with session.begin_nested():
                new_id = session.execute(_INSERT_INSTANCE, row).scalar_one()
        except IntegrityError:
            new_id = None
    if new_id is None:
        return None
    inst = ProcessInstance(**(_INSTANCE_DEFAULTS | row), id=new_id)
    make_transient_to_detached(inst)
    session.add(inst)
    return inst


def spec_cache_key(definition: ProcessDefinition) -> tuple[Any, ...]:
    """Identifies a definition version for the serializer's spec cache (an id alone could be
    reused by a database that recycles ids after a delete)."""
    return (definition.id, definition.key, definition.version, definition.deployed_at)
