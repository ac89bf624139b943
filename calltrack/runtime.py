"""How a web worker's Python runs: its garbage collector, tuned once the application is loaded.

Python's cyclic garbage collector runs a young-generation pass every 700 net allocations of container objects and,
every so often, an older pass that traverses every object still alive: a Django worker's modules, URL patterns,
models and caches (hundreds of thousands of objects) that live as long as the process. A webhook allocates
thousands of objects, so a pass ran several times per request, and its traversals of those long-lived objects
were about 6% of ``/voice/incoming``'s instructions (callgrind).

:func:`worker_gc_tune`, called by gunicorn once a worker has loaded the application (``gunicorn.conf.py``,
``post_worker_init``):

- ``gc.freeze()`` moves every object alive then to a permanent generation that no pass traverses (they were made
  at import and live as long as the worker);
- the young generation's threshold goes from 700 to ``CALLTRACK_GC_THRESHOLD`` (50,000 by default; 0 leaves
  Python's defaults): a pass every few requests instead of several per request. What a request leaves in
  reference cycles waits a little longer to be freed (a few MB at most).

Reference counting still frees everything else at once; nothing here turns the collector off.
"""

from __future__ import annotations

import gc
import os

DEFAULT_THRESHOLD = 50_000


def worker_gc_tune(threshold: int | None = None) -> None:
    """Freeze what the loaded application holds and make young-generation passes rarer (see the module)."""
    if threshold is None:
        raw = os.environ.get("CALLTRACK_GC_THRESHOLD", "").strip()
        threshold = int(raw) if raw.isdigit() else DEFAULT_THRESHOLD
    if threshold <= 0:
        return
    gc.collect()  # what import-time work left in cycles is freed, not frozen
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
