"""A web worker's garbage collector (``calltrack.runtime``): once gunicorn's worker has loaded the application, what
it holds is frozen out of the collector's passes and young passes are rarer; ``CALLTRACK_GC_THRESHOLD=0`` keeps
Python's defaults."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import pytest

from calltrack.runtime import DEFAULT_THRESHOLD, worker_gc_tune


@pytest.fixture
def collector():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_loaded_application_is_frozen_and_young_passes_are_rarer(collector, monkeypatch):
    monkeypatch.delenv("CALLTRACK_GC_THRESHOLD", raising=False)
    gc.unfreeze()
    worker_gc_tune()
    assert gc.get_threshold()[0] == DEFAULT_THRESHOLD
    assert gc.get_freeze_count() > 10_000  # Django, the apps, the URL patterns: alive as long as the worker
    assert gc.isenabled()  # tuned, never off: cycles are still collected


def test_zero_keeps_pythons_defaults(collector, monkeypatch):
    monkeypatch.setenv("CALLTRACK_GC_THRESHOLD", "0")
    gc.unfreeze()
    before = gc.get_threshold()
    worker_gc_tune()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_gunicorn_tunes_each_worker_after_it_loaded_the_application(collector, monkeypatch):
    monkeypatch.setenv("CALLTRACK_GC_THRESHOLD", "12345")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", Path(__file__).resolve().parents[2] / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    conf.post_worker_init(worker=None)
    assert gc.get_threshold()[0] == 12345
