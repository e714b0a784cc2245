"""The engine's errors: a small hierarchy whose type says what went wrong and whether to retry.

Every error carries ``code`` and ``status`` so the one HTTP error mapper (``web/errors.py``)
can answer with a 4xx naming the BPMN element / form field at fault, exactly as for
``crm_models.errors.CrmError``.
"""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    code = "engine_error"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


@dataclass(frozen=True)
class ValidationError:
    """One problem in a process definition; ``element_id`` names the shape ("" = whole file)."""

    element_id: str
    message: str
    line: int | None = None  # line in the BPMN/DMN file, when known

    def __str__(self) -> str:
        return f"{self.element_id}: {self.message}" if self.element_id else self.message


class DefinitionInvalid(EngineError):
    """A BPMN/DMN upload cannot be deployed; ``errors`` lists every problem found."""

    code = "definition_invalid"
    status = 422

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = list(errors)
        fields = {}
        for e in self.errors:
            key = e.element_id or "_"
            fields[key] = f"{fields[key]}; {e.message}" if key in fields else e.message
        summary = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"The process definition is invalid: {summary}{more}", fields=fields)


class DataLimitExceeded(EngineError):
    """An instance's data grew past the engine's limit at ``element_id``: an incident, so one
    runaway process cannot fill the database and the pages that show it."""

    code = "data_limit_exceeded"
    status = 422

    def __init__(self, element_id: str, size: int, limit: int) -> None:
        self.element_id = element_id
        self.size = size
        self.limit = limit
        where = f"at {element_id}" if element_id else "while running"
        super().__init__(f"the process data grew to {size} bytes {where}, past the limit of "
                         f"{limit} bytes per instance; change the process so that it keeps "
                         "less data", fields={element_id or "_": "data grew past the limit"})


class NotFound(EngineError):
    code = "not_found"
    status = 404


class Conflict(EngineError):
    """Someone else changed the instance/task first (optimistic lock lost, task already done)."""

    code = "conflict"
    status = 409


class AlreadyStarted(Conflict):
    """This (event, definition) pair already started an instance."""

    code = "already_started"


class TaskNotReady(EngineError):
    """The task is not open for this action (completed, cancelled, not yours)."""

    code = "task_not_ready"
    status = 409


class NotAllowed(EngineError):
    """The user is neither the assignee, the claimer nor a candidate of the task."""

    code = "forbidden"
    status = 403


class InvalidTaskData(EngineError):
    """Form data does not fit the task's form; ``fields`` maps each field to its problem."""

    code = "validation_failed"
    status = 422

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("Invalid value in: " + ", ".join(sorted(fields)), fields=fields)


class SandboxError(EngineError):
    """An expression or script was refused or failed inside the sandbox.

    ``line`` is the line in the expression/script; ``element_id`` is filled in by the engine
    with the BPMN element (or sequence flow) whose expression failed.
    """

    code = "sandbox_error"
    status = 422

    def __init__(self, message: str, *, line: int | None = None,
                 element_id: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.element_id = element_id


class ServiceCallError(EngineError):
    """A service operation failed. ``retryable=False`` skips the remaining attempts."""

    code = "service_call_failed"
    status = 502

    def __init__(self, message: str, *, retryable: bool = True,
                 fields: dict[str, str] | None = None, error_code: str | None = None) -> None:
        super().__init__(message, fields=fields)
        self.retryable = retryable
        #: the BPMN error code an error boundary event can catch (None: "service_call_failed")
        self.error_code = error_code
