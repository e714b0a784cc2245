"""Starting an import: a job for an uploaded file, its mapping and policy, then the queue."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_models.errors import NotFound, ValidationFailed
from crm_models.permissions import Actor

from .mapping import check_mapping, guess
from .models import IMPORT_ENTITIES, POLICIES, ImportJob, ImportMapping, ImportRowError
from .reader import FileProblem, detect, header_and_sample


def new_stored_name(filename: str) -> str:
    suffix = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    return secrets.token_hex(16) + suffix


def create_job(session: Session, actor: Actor, *, entity: str, filename: str,
               file_dir: Path, stored_name: str) -> ImportJob:
    """A job for a file already saved as ``file_dir/stored_name``; checks the "import" right
    and that the file can be read (ValidationFailed naming ``file`` otherwise)."""
    if entity not in IMPORT_ENTITIES:
        raise ValidationFailed({"entity": "must be one of: " + ", ".join(IMPORT_ENTITIES)})
    actor.require(entity, "import")
    path = file_dir / stored_name
    try:
        fmt = detect(path)
        headers, _ = header_and_sample(path, fmt)
    except FileProblem as exc:
        path.unlink(missing_ok=True)
        where = f"row {exc.row}: " if exc.row else ""
        raise ValidationFailed({"file": where + exc.message}) from None
    job = ImportJob(entity=entity, filename=filename[:255], stored_name=stored_name,
                    file_format=fmt.file_format, encoding=fmt.encoding,
                    delimiter=fmt.delimiter, headers=[h[:255] for h in headers],
                    mapping=_saved_or_guessed(session, entity, headers),
                    user_id=actor.user_id)
    session.add(job)
    session.flush()
    return job


def _saved_or_guessed(session: Session, entity: str, headers: list[str]) -> dict[str, str]:
    """The guess from the headers, overlaid with the saved mappings' choices for them."""
    mapping = guess(entity, headers)
    folded = [h.strip().casefold() for h in headers]
    for saved in session.scalars(select(ImportMapping).where(ImportMapping.entity == entity)
                                 .order_by(ImportMapping.id)):
        for header, field in saved.columns.items():
            if header in folded:
                mapping[str(folded.index(header))] = field
    return mapping


def get_job(session: Session, actor: Actor, job_id: int) -> ImportJob:
    """A job of this user (an admin sees every job)."""
    job = session.get(ImportJob, job_id)
    if job is None or (job.user_id != actor.user_id and not actor.is_admin):
        raise NotFound(f"No import with id {job_id}")
    return job


def start_job(session: Session, actor: Actor, job: ImportJob, *, mapping: dict[str, str],
              policy: str, dry_run: bool, save_as: str = "") -> ImportJob:
    """Queue the job (a dry run or the real one) with this mapping and duplicate policy."""
    actor.require(job.entity, "import")
    if job.status not in ("uploaded", "done", "failed", "cancelled") or (
            job.status == "done" and not job.dry_run):
        raise ValidationFailed({"status": "this import has already run"})
    mapping = {k: v for k, v in mapping.items() if v}
    errors = check_mapping(job.entity, mapping, job.headers)
    if policy not in POLICIES:
        errors["policy"] = "must be one of: " + ", ".join(POLICIES)
    if len(save_as) > 100:
        errors["save_as"] = "must be at most 100 characters"
    if errors:
        raise ValidationFailed(errors)
    if save_as.strip():
        _save_mapping(session, job, mapping, save_as.strip())
    session.execute(delete(ImportRowError).where(ImportRowError.job_id == job.id))
    job.mapping, job.policy, job.dry_run = mapping, policy, dry_run
    job.status, job.position, job.message = "queued", 0, ""
    job.created = job.updated = job.skipped = job.failed = 0
    job.claimed_by, job.lease_until, job.finished_at = "", None, None
    session.flush()
    return job


def _save_mapping(session: Session, job: ImportJob, mapping: dict[str, str], name: str) -> None:
    columns = {job.headers[int(k)].strip().casefold(): v for k, v in mapping.items()}
    saved = session.scalar(select(ImportMapping).where(ImportMapping.entity == job.entity,
                                                       ImportMapping.name == name))
    if saved is None:
        session.add(ImportMapping(entity=job.entity, name=name, columns=columns))
    else:
        saved.columns = columns


def cancel_job(session: Session, actor: Actor, job: ImportJob) -> None:
    if not job.finished:
        job.status, job.lease_until, job.message = "cancelled", None, "cancelled"


def row_errors(session: Session, job: ImportJob) -> Any:
    return session.scalars(select(ImportRowError).where(ImportRowError.job_id == job.id)
                           .order_by(ImportRowError.row, ImportRowError.id))
