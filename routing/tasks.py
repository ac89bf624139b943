"""django-q2 tasks of routing. Each takes no objects, is safe to run twice, and returns a short summary.

Scheduled by ``manage.py calltrack_schedules`` (see ``calltrack.schedules``).
"""

from __future__ import annotations

from routing.services import attempt_slots_release_stale
from routing.services.slots import cap_counters_fold


def attempt_slots_release_stale_task() -> str:
    """Clear the slot flag of dialled legs whose callback was lost (counting already ignores them)."""
    return f"{attempt_slots_release_stale()} stale slots released"


def cap_counters_fold_task() -> str:
    """Fold the cap deltas into the handlers' counters, so a cap check reads only the last minute's deltas."""
    return f"{cap_counters_fold()} cap counters folded"
