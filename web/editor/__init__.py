"""The process editor's pages: process list, editor, versions, instance viewer, heatmap.

Everyone signed in may look at definitions, versions and heatmaps, and at the instances of
records they may read; only the ``design_processes`` right edits, deploys, activates and
deactivates (the buttons are not shown to others, and every POST checks the right again —
``PermissionDenied`` becomes a 403 page). Retry and cancel need ``design_processes`` or
admin rights, as in the REST API.

The pages hand their data to the bundles built from ``editor/`` (``dist/editor/*.js``) as
JSON in ``<script id="editor-config">``; the bundles call ``/api/v1`` for everything else.
When the bundle was not built the pages say so instead of showing an empty canvas.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, g, redirect, request, url_for

from crm_models.permissions import Actor

bp = Blueprint("editor", __name__, url_prefix="/processes")
DIST = Path(__file__).resolve().parent.parent / "static" / "dist" / "editor"


@bp.before_request
def _require_login() -> Any:
    if g.get("user") is None:
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    return None


def can_design(actor: Actor | None) -> bool:
    return actor is not None and actor.has_flag("design_processes")


def can_operate(actor: Actor | None) -> bool:
    """Retry and cancel instances: designers and admins."""
    return actor is not None and (actor.has_flag("design_processes") or actor.is_admin)


def init_app(app: Flask) -> None:
    from . import instances, labels, pages  # noqa: F401  (they add routes to bp)

    labels.install(app)

    @app.context_processor
    def _editor_layout() -> dict[str, Any]:
        return {"editor_bundle": (DIST / "modeler.js").exists()}

    app.register_blueprint(bp)
