"""Russian and English: the user's locale and time zone, or the browser's language."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from flask import Flask, g, request, session
from flask_babel import Babel, format_datetime, get_locale

LANGUAGES = ("ru", "en")


def select_locale() -> str:
    user = g.get("user")
    if user is not None and user.locale in LANGUAGES:
        return user.locale
    chosen = session.get("locale")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "ru"


def select_timezone() -> str:
    user = g.get("user")
    return user.timezone if user is not None else "Europe/Moscow"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(
        __import__("pathlib").Path(__file__).resolve().parent / "translations"))
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["localtime"] = _localtime
    app.jinja_env.globals["get_locale"] = lambda: str(get_locale() or "ru")


def _localtime(value: dt.datetime | None, fmt: str = "short") -> str:
    if value is None:
        return ""
    return format_datetime(value, fmt)


def to_user_tz(value: dt.datetime, tz: str) -> dt.datetime:
    return value.astimezone(zoneinfo.ZoneInfo(tz))


def jinja_globals() -> dict[str, Any]:
    return {"languages": LANGUAGES}
