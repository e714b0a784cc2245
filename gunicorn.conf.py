"""Gunicorn settings for ``make run`` and production: ``gunicorn -c gunicorn.conf.py
'app:create_app()'``. Every setting comes from a ``MARSHRUT_*`` variable (README,
"Production").

Threaded workers (``gthread``): a CRM request mostly waits on the database, so threads serve
many users per process. On SQLite writers queue for the one write lock (``BEGIN IMMEDIATE``,
``MARSHRUT_LOCK_TIMEOUT``), readers never wait; on PostgreSQL each process keeps a pool sized
from its threads. Background work (timers, outbox recovery, webhook delivery) starts in every
worker with the worker itself; it is safe in several at once (leases and row locks).
"""
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(f"MARSHRUT_{name}", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else default


bind = os.environ.get("MARSHRUT_BIND", "127.0.0.1:5000")
workers = _int("WORKERS", 2)
threads = _int("THREADS", 8)
worker_class = "gthread"
timeout = _int("TIMEOUT", 60)  # a worker silent this long is killed and replaced
graceful_timeout = _int("GRACEFUL_TIMEOUT", 30)  # SIGTERM: in-flight requests finish first
keepalive = 5
accesslog = os.environ.get("MARSHRUT_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("MARSHRUT_LOG_LEVEL", "info")
proc_name = "marshrut"
# Each thread may hold one pooled connection while its events are routed after commit, the
# background threads a few more.
os.environ.setdefault("MARSHRUT_DB_POOL_SIZE", str(threads + 4))
# gunicorn's control socket lives at one path per user: several servers on one machine (the
# scale-out topology, the tests) would take it from each other. Not used here.
control_socket_disable = True


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    """In the worker, once the app is loaded: move everything start-up made (modules, the
    app, SQLAlchemy's mappers and caches, the cached BPMN specs) out of the cyclic garbage
    collector's reach. Those objects live as long as the worker; without this, each full
    collection walks them all again and a request that triggers one waits for it — the long
    tail of fast lists (``bench/inbox.py --gc-freeze`` measures both ways)."""
    import gc

    gc.collect()
    gc.freeze()


def worker_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """In the worker, as it exits (SIGTERM, max requests): stop its background threads while
    the interpreter is still whole."""
    app = getattr(worker, "wsgi", None)
    stop = getattr(app, "extensions", {}).get("stop_background")
    if stop is not None:
        stop()
