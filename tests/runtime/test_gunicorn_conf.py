"""gunicorn.conf.py's worker hooks, called as gunicorn calls them."""
from __future__ import annotations

import gc
import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_a_worker_freezes_what_start_up_made_out_of_the_collectors_reach():
    hooks = runpy.run_path(str(CONF))
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](object())
        assert gc.get_freeze_count() > 1000  # the modules and the app loaded so far
    finally:
        gc.unfreeze()
