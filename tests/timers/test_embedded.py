"""Where the scheduler runs: inside the app (embedded) unless testing, a CLI command other than
``run`` is running, or ``MARSHRUT_RUN_SCHEDULER=false``; and in ``flask worker`` processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy import select

from app import create_app
from engine.ports import StartRequest
from engine.store import Timer
from web.scheduling import embedded_scheduler_wanted, stop_background

from .support import wait_process, wait_until

ROOT = Path(__file__).resolve().parents[2]


def bare_app(**config):
    app = Flask("bare")
    app.config.update({"RUN_SCHEDULER": True, "TESTING": False} | config)
    return app


def test_a_served_app_runs_the_scheduler_unless_told_not_to():
    assert embedded_scheduler_wanted(bare_app())  # a WSGI server: no click context
    assert not embedded_scheduler_wanted(bare_app(RUN_SCHEDULER=False))
    assert not embedded_scheduler_wanted(bare_app(TESTING=True))


@pytest.mark.parametrize("command,params,wanted", [
    ("run", {"reload": False}, True),
    ("run", {"reload": True}, False),  # the reloader's parent; its child runs one
    ("init-db", {}, False),
    ("flask", {}, False),  # app commands load the app while the group resolves them
])
def test_cli_commands_other_than_run_start_none(monkeypatch, command, params, wanted):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    with click.Context(click.Command(command), info_name=command) as ctx:
        ctx.params.update(params)
        assert embedded_scheduler_wanted(bare_app()) is wanted


def test_a_real_cli_command_does_not_start_it(app_config):
    made = []

    def factory():
        made.append(create_app(app_config | {"TESTING": False, "RUN_SCHEDULER": True}))
        return made[-1]

    result = CliRunner().invoke(FlaskGroup(create_app=factory), ["routes"])
    assert result.exit_code == 0, result.output
    assert made and not made[0].extensions["timer_scheduler"].running


def test_an_app_created_for_serving_starts_it_once(app_config):
    served = create_app(app_config | {"TESTING": False, "RUN_SCHEDULER": True})
    try:
        assert served.extensions["timer_scheduler"].running
        threads = {t.name for t in threading.enumerate()}
        assert {"marshrut-dispatch", "webhook-delivery"} <= threads  # with the process
        again = create_app(app_config | {"TESTING": False, "RUN_SCHEDULER": True})
        assert not again.extensions["timer_scheduler"].running  # one per process
    finally:
        # everything it started (timers, the recovery loop, webhook delivery): a thread left
        # running would dispatch the next tests' events behind their backs
        stop_background(served)
        served.extensions["db_engine"].dispose()
        time.sleep(0.1)
        assert "webhook-delivery" not in {t.name for t in threading.enumerate()}
        again.extensions["db_engine"].dispose()


def test_the_worker_command_fires_timers_and_stops_on_sigterm(app, db, tmp_path):
    engine = app.extensions["engine"]
    env = dict(os.environ, MARSHRUT_DATABASE_URL=app.config["DATABASE_URL"],
               MARSHRUT_SECRET_KEY="test", MARSHRUT_WEBHOOK_DELIVERY_THREAD="false")
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker",
                                 "--id", "solo"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            d = engine.deploy(db, wait_process("solo_wait", "PT1S"))
            inst = engine.start(db, d, StartRequest({}))
            db.commit()

            def fired():
                db.rollback()
                return db.scalars(select(Timer.fired_by).where(
                    Timer.instance_id == inst.id)).one()

            assert wait_until(fired, timeout=30, every=0.1) == "solo"
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    output = (tmp_path / "worker.log").read_text()
    assert code == 0, output
    assert "worker solo firing timers" in output and "worker solo stopped" in output
