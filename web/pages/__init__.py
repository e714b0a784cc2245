"""Server-rendered pages (Jinja + htmx)."""
from __future__ import annotations

from flask import Blueprint, Flask, render_template

from ..auth import login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
@login_required
def home() -> str:
    return render_template("home.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
