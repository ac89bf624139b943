"""The routing strategy names: one list shared by the routing decision (``routing.decision``, pure) and the
campaign model's choices (``tracking.models.RoutingStrategy``). Pure: no Django."""

from __future__ import annotations

PRIORITY_WEIGHT = "priority_weight"
ROUND_ROBIN = "round_robin"
SEQUENTIAL = "sequential"
SIMULTANEOUS = "simultaneous"
LEAST_CONNECTED = "least_connected"

# name -> what the admin and the API call it, in the order the admin lists them
LABELS: dict[str, str] = {
    PRIORITY_WEIGHT: "Priority, then weight",
    ROUND_ROBIN: "Round robin",
    SEQUENTIAL: "Sequential",
    SIMULTANEOUS: "Simultaneous (ring all)",
    LEAST_CONNECTED: "Least connected",
}
STRATEGIES: tuple[str, ...] = tuple(LABELS)
