"""Marshrut's one composition root: ``create_app(config)`` and the CLI commands.

Configuration is layered: defaults → ``instance/config.py`` → ``MARSHRUT_*`` environment
variables → the ``config`` argument (tests). It is read here and passed on as values.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import click
from flask import Flask

ROOT = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # default: SQLite in the instance folder
    "LOCK_TIMEOUT": 10.0,  # seconds a request may wait for a lock before it answers 503
    "DB_POOL_SIZE": None,  # PostgreSQL connections per process (default: from the threads)
    "SECRET_KEY": None,  # default: generated into instance/secret_key on first run
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,  # set MARSHRUT_SESSION_COOKIE_SECURE=1 behind HTTPS
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "BABEL_DEFAULT_LOCALE": "ru",
    "BABEL_DEFAULT_TIMEZONE": "Europe/Moscow",
    "LANGUAGES": ["ru", "en"],
    "DISPATCH_AFTER_COMMIT": True,  # start processes for CRM events right after each commit
    "RUN_SCHEDULER": True,  # embedded set-up: timers run inside the app process
    "TIMER_POLL_SECONDS": 0.5,  # the scheduler looks for timers added elsewhere this often
    "TIMER_LEASE_SECONDS": 60,  # a crashed worker's claimed timers are retaken after this
    "TIMER_BATCH": 50,  # timers claimed at once by one worker
    "INVOICE_OVERDUE_SECONDS": 300,  # how often invoices past their due date become overdue
    "BUSINESS_CALENDAR": {  # working time of marshrut:businessHours timers
        "timezone": "Europe/Moscow", "days": [1, 2, 3, 4, 5], "start": "09:00",
        "end": "18:00", "holidays": [], "workdays": []},
    "BITRIX_RATE_PER_SECOND": 2.0,  # Bitrix24 REST: each webhook's leaky bucket drains this fast
    "BITRIX_RATE_BURST": 50,  # … and holds this many requests
    "BITRIX_PORTAL_DOMAIN": None,  # auth[domain] in outgoing webhooks (default: localhost)
    "PUBLIC_URL": None,  # how clients reach us, for printed URLs (default: http://127.0.0.1:5000)
    "WEBHOOK_DELIVERY_THREAD": None,  # outgoing webhooks sent in-process (None: as RUN_SCHEDULER)
    "WEBHOOK_DELIVERY_TIMEOUT": 10,  # seconds per outgoing POST
    "OUTGOING_URL_ALLOWLIST": [],  # hosts (host or host:port) outgoing posts may reach even
    # when they are loopback or private addresses
    "INSTANCE_DATA_LIMIT_BYTES": 1024 * 1024,  # a process instance's serialized data, at most
    "MAIL_KEY": None,  # encrypts mailbox passwords (default: derived from SECRET_KEY)
    "MAIL_HOST_ALLOWLIST": [],  # mail hosts (host or host:port) allowed on loopback/private
    "MAIL_CA_FILE": None,  # an extra CA bundle for the mail servers' certificates
    "MAIL_POLL_SECONDS": 60,  # the mail job: send due e-mails, import new ones this often
    "MAIL_TIMEOUT": 20,  # seconds per SMTP/IMAP operation
    "MAIL_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,  # per file, sent or received
    "MAIL_LEASE_SECONDS": 300,  # a poller's/sender's claim on a mailbox/e-mail
    "MAIL_THREAD": None,  # the mail job runs in-process (None: as RUN_SCHEDULER)
}


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_config(app: Flask, config: dict[str, Any] | None) -> None:
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    for key, raw in os.environ.items():
        if key.startswith("MARSHRUT_") and key != "MARSHRUT_CONFIG":
            app.config[key.removeprefix("MARSHRUT_")] = (
                raw if key in ("MARSHRUT_DATABASE_URL", "MARSHRUT_SECRET_KEY",
                                                          "MARSHRUT_MAIL_KEY") else _env_value(raw))
    if config:
        app.config.update(config)
    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'marshrut.sqlite3'}"
    if not app.config["SECRET_KEY"]:
        instance.mkdir(parents=True, exist_ok=True)
        key_file = instance / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        app.config["SECRET_KEY"] = key_file.read_text().strip()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), instance_relative_config=True,
                template_folder="web/templates", static_folder="web/static")
    load_config(app, config)

    from web import database, i18n

    database.init_app(app)
    i18n.init_app(app)

    from web import init_app as init_web

    init_web(app)
    from web import invoice_jobs, scheduling, timers

    timers.init_app(app)
    invoice_jobs.init_app(app)
    scheduling.init_app(app)  # last: the embedded scheduler may start with the app
    register_cli(app)
    return app


def register_cli(app: Flask) -> None:
    from web.database import db_session, migrate

    @app.cli.command("init-db")
    @click.option("--demo", is_flag=True, help="Also load the demo data (once).")
    def init_db(demo: bool) -> None:
        """Create or migrate the database, then the reference data (and demo data)."""
        from crm_models.demo import DEMO_PASSWORD, DEMO_USERS, load_demo
        from crm_models.setup import ensure_reference_data

        migrate(app)
        with db_session(app) as session:
            ensure_reference_data(session)
            loaded = load_demo(session) if demo else False
            session.commit()
            if demo:  # after the demo's own events, which predate the processes
                from automation.seed import deploy_shipped

                app.extensions["dispatcher"].dispatch_pending()
                deploy_shipped(session, app.extensions["engine"])
                session.commit()
        click.echo(f"Database ready: {app.config['DATABASE_URL']}")
        if demo:
            click.echo("Demo data loaded." if loaded else "Demo data already present.")
            click.echo(f"Demo logins (password: {DEMO_PASSWORD}):")
            for email, name, role, _dep in DEMO_USERS:
                click.echo(f"  {email:24} {role:11} {name}")

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--name", "full_name", required=True)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", default="manager", show_default=True,
                  help="Built-in role code: admin, sales_head, manager, observer.")
    @click.option("--locale", default="ru", show_default=True)
    def create_user_cmd(email: str, full_name: str, password: str, role: str,
                        locale: str) -> None:
        """Create a user and grant them a role."""
        from crm_models.errors import CrmError
        from crm_models.permissions import system_actor
        from crm_models.services.org import create_user, ensure_builtin_roles, grant_role

        with db_session(app) as session:
            roles = ensure_builtin_roles(session)
            if role not in roles:
                raise click.BadParameter(f"unknown role {role!r}", param_hint="--role")
            actor = system_actor("cli")
            try:
                user = create_user(session, actor, email=email, full_name=full_name,
                                   password=password, locale=locale)
                grant_role(session, actor, roles[role].id, user_id=user.id)
            except CrmError as exc:
                raise click.ClickException(f"{exc.message}: {exc.fields}") from None
            session.commit()
            click.echo(f"Created user {user.id} <{user.email}> with role {role}")

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="cli", help="A label for the token.")
    def create_token_cmd(email: str, name: str) -> None:
        """Print a new API token for the user with EMAIL."""
        from sqlalchemy import func, select

        from crm_models.org import User
        from crm_models.services.org import create_token

        with db_session(app) as session:
            user = session.scalars(select(User).where(
                func.lower(User.email) == email.strip().lower())).first()
            if user is None:
                raise click.ClickException(f"No user with e-mail {email}")
            token = create_token(session, user, name)
            session.commit()
        click.echo(token)

    @app.cli.command("create-webhook")
    @click.argument("email")
    @click.option("--name", default="cli", show_default=True, help="A label for the webhook.")
    @click.option("--scopes", default="crm,bizproc,user,department", show_default=True,
                  help="Comma-separated: crm, bizproc, user, department.")
    def create_webhook_cmd(email: str, name: str, scopes: str) -> None:
        """Print the URL of a new Bitrix24-compatible incoming webhook acting as EMAIL."""
        from integrations.cli import CommandError, create_webhook_url

        with db_session(app) as session:
            try:
                click.echo(create_webhook_url(session, email, name=name, scopes=scopes,
                                              base_url=app.config["PUBLIC_URL"]))
            except CommandError as exc:
                raise click.ClickException(str(exc)) from None

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False))
    def backup_cmd(path: str) -> None:
        """Write a consistent copy of the database to PATH while the app keeps running
        (SQLite: the online backup API; PostgreSQL: pg_dump's custom format)."""
        from web.backup import backup

        backup(app.config["DATABASE_URL"], Path(path))
        click.echo(f"Backup written to {path}")

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--yes", is_flag=True, help="Do not ask: the database is replaced.")
    def restore_cmd(path: str, yes: bool) -> None:
        """Replace the database with the backup at PATH (stop the app first), then migrate."""
        from web.backup import restore

        if not yes:
            click.confirm("This replaces every row of the database. Go on?", abort=True)
        app.extensions["db_engine"].dispose()
        restore(app.config["DATABASE_URL"], Path(path))
        migrate(app)  # a backup from an older version is brought up to date
        click.echo(f"Database restored from {path}")

    @app.cli.command("deliver-webhooks")
    @click.option("--loop", is_flag=True, help="Keep running, polling every --every seconds.")
    @click.option("--every", default=5.0, show_default=True)
    def deliver_webhooks_cmd(loop: bool, every: float) -> None:
        """Send pending outgoing webhooks (for set-ups without the in-process worker)."""
        from integrations.cli import run_deliveries

        run_deliveries(app.extensions["bitrix_delivery"], loop=loop, every=every, echo=click.echo)
