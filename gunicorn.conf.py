"""gunicorn's configuration file, read from the working directory by default (the image's WORKDIR, /app): only the
bookkeeping of prometheus-client's multiprocess mode (README "Operations"). The command line (the Dockerfile's CMD,
GUNICORN_CMD_ARGS) sets everything else.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its figures in files of that directory and a scrape of
/metrics, answered by any worker, adds up every worker's. So:

- ``on_starting``: the master empties the directory before the first worker starts: files of a previous run would
  be counted again (the container's tmpfs starts empty anyway; a directory on disk does not);
- ``child_exit``: a worker that exits (``--max-requests``, a timeout, a crash) gives its live-gauge files back.

And ``post_worker_init``: once a worker has loaded the application, its garbage collector is tuned
(``calltrack.runtime.worker_gc_tune``: what the application holds is frozen, young passes are rarer;
``CALLTRACK_GC_THRESHOLD=0`` keeps Python's defaults).
"""

import os as _os


def on_starting(server):
    if _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from calltrack.metrics_worker import metrics_dir_empty

        metrics_dir_empty(_os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker):
    if _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _os.environ["PROMETHEUS_MULTIPROC_DIR"])


def post_worker_init(worker):
    from calltrack.runtime import worker_gc_tune

    worker_gc_tune()
