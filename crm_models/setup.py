"""Reference data every installation needs: built-in roles and the default deal pipeline."""
from __future__ import annotations

from sqlalchemy.orm import Session

from .entities import Pipeline, Stage, StageSemantics
from .services.org import ensure_builtin_roles

DEFAULT_STAGES = (
    ("NEW", "New", "Новая", "process", "#39a8ef"),
    ("PREPARATION", "Preparing documents", "Подготовка документов", "process", "#2fc6f6"),
    ("PREPAYMENT_INVOICE", "Invoice for prepayment", "Счёт на предоплату", "process", "#55d0e0"),
    ("EXECUTING", "In progress", "В работе", "process", "#47e4c2"),
    ("FINAL_INVOICE", "Final invoice", "Финальный счёт", "process", "#ffa900"),
    ("WON", "Deal won", "Сделка успешна", "won", "#7bd500"),
    ("LOSE", "Deal lost", "Сделка провалена", "lost", "#ff5752"),
)


def ensure_reference_data(session: Session) -> None:
    ensure_builtin_roles(session)
    if session.get(Pipeline, 0) is None:
        pipeline = Pipeline(id=0, name="Основная воронка", sort=0)
        pipeline.stages = [Stage(code=code, name=ru, sort=(i + 1) * 10, semantics=sem, color=color)
                           for i, (code, _en, ru, sem, color) in enumerate(DEFAULT_STAGES)]
        session.add(pipeline)
    session.flush()


def stage_label(code: str, locale: str) -> str | None:
    """The English name of a default stage (stored names are Russian)."""
    for c, en, ru, _sem, _color in DEFAULT_STAGES:
        if c == code:
            return en if locale == "en" else ru
    return None


__all__ = ["StageSemantics", "ensure_reference_data", "stage_label"]
