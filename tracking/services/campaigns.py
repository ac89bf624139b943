"""Writes to campaigns and their handler lists. Routing caches a campaign's configuration by ``config_version``,
which database triggers bump on every change of these rows (tracking/sql/config_version.*.sql)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_q.tasks import async_task

from calltrack.model_writes import instance_apply_and_save
from tracking.models import Campaign, CampaignHandler, ConversionRule, IVROption, Webhook

# The rows a campaign's admin page edits inline; routing caches them with the campaign.
CampaignPart = TypeVar("CampaignPart", CampaignHandler, IVROption, ConversionRule, Webhook)

HANDLER_ENTRY_FIELDS = ("handler", "priority", "weight", "enabled", "position", "duplicate_days")


@transaction.atomic
def campaign_create(*, fields: Mapping[str, Any], handlers: Sequence[Mapping[str, Any]] | None = None) -> Campaign:
    """Create a campaign and, if given, its handler list. All or nothing."""
    campaign = instance_apply_and_save(instance=Campaign(), fields=fields)
    if handlers is not None:
        campaign_handlers_set(campaign=campaign, entries=handlers)
    return campaign


# The numbers layer's task (named, not imported: numbers sits above tracking), as in the django-q2 schedules.
FALLBACK_REFRESH_TASK = "calltrack.numbers.tasks.numbers_fallback_refresh_task"


def _fallback_refresh_queue(*, campaign_id: int) -> None:
    """A campaign's fail-safe changed: once committed, give Twilio its numbers' new voice fallback URLs."""
    if settings.CALLTRACK_CARRIER != "twilio" or not settings.CALLTRACK_FALLBACK_URL:
        return
    transaction.on_commit(lambda: async_task(FALLBACK_REFRESH_TASK, [], campaign_id), robust=True)


@transaction.atomic
def campaign_update(
    *, campaign: Campaign, fields: Mapping[str, Any], handlers: Sequence[Mapping[str, Any]] | None = None
) -> Campaign:
    """Change fields and, when ``handlers`` is given, replace the handler list (the triggers bump ``config_version``:
    ``campaign`` is given the new one). A new
    fail-safe number is given to the carrier as its numbers' voice fallback URL (a task queued on commit)."""
    # The stored value: the admin's form has already applied its fields to ``campaign``.
    failsafe_before = (
        Campaign.objects.filter(pk=campaign.pk).values_list("failsafe_number", flat=True).first() if "failsafe_number" in fields else None
    )
    instance_apply_and_save(instance=campaign, fields=fields)
    if failsafe_before is not None and failsafe_before != campaign.failsafe_number:
        _fallback_refresh_queue(campaign_id=campaign.pk)
    if handlers is not None:
        campaign_handlers_set(campaign=campaign, entries=handlers)
    campaign.refresh_from_db(fields=["config_version"])
    return campaign


@transaction.atomic
def campaign_handlers_set(*, campaign: Campaign, entries: Sequence[Mapping[str, Any]]) -> list[CampaignHandler]:
    """Replace the campaign's handler list with ``entries`` ({handler, priority, weight, enabled, position}).

    Every entry is validated before anything is written; errors name the entry
    (``handlers``: "entry 2: ..."). Entries keep their given order as ``position`` when none is set.
    """
    problems: list[str] = []
    rows: list[CampaignHandler] = []
    seen: set[int] = set()
    for n, entry in enumerate(entries, start=1):
        unknown = set(entry) - set(HANDLER_ENTRY_FIELDS)
        if unknown:
            problems.append(f"entry {n}: unknown fields {', '.join(sorted(unknown))}")
            continue
        handler = entry.get("handler")
        if handler is None:
            problems.append(f"entry {n}: choose a handler")
            continue
        if handler.pk in seen:
            problems.append(f"entry {n}: handler '{handler}' is listed twice")
            continue
        seen.add(handler.pk)
        row = CampaignHandler(
            campaign=campaign,
            handler=handler,
            priority=entry.get("priority"),
            weight=entry.get("weight"),
            duplicate_days=entry.get("duplicate_days"),
            enabled=entry.get("enabled", True),
            position=entry["position"] if entry.get("position") is not None else n - 1,
        )
        try:
            row.full_clean(exclude=["campaign"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                problems.extend(f"entry {n}: {field}: {m}" for m in messages)
        rows.append(row)
    if problems:
        raise ValidationError({"handlers": problems})
    CampaignHandler.objects.filter(campaign=campaign).delete()
    return CampaignHandler.objects.bulk_create(rows)


def campaign_delete(*, campaign: Campaign) -> None:
    """Delete a campaign. Refused (ProtectedError) while pools use it."""
    campaign.delete()


@transaction.atomic
def campaign_part_save(*, part: CampaignPart, fields: Mapping[str, Any]) -> CampaignPart:
    """Create or change one row of a campaign (a handler entry, an IVR option, a conversion rule, a webhook)
    after full validation (a trigger bumps the routing configuration version of its campaign, and of the campaign it
    left if it moved). ``fields`` are set on ``part`` first; a new row needs its ``campaign`` among them or set."""
    return instance_apply_and_save(instance=part, fields=fields)


@transaction.atomic
def campaign_part_delete(*, part: CampaignPart) -> None:
    """Delete one row of a campaign (a trigger bumps its campaign's routing configuration version)."""
    part.delete()


def webhook_create(*, fields: Mapping[str, Any]) -> Webhook:
    """Create a webhook after full validation; its campaign reloads its cached configuration (which events listen)."""
    return campaign_part_save(part=Webhook(), fields=fields)


def webhook_update(*, webhook: Webhook, fields: Mapping[str, Any]) -> Webhook:
    """Change a webhook; its campaign (and the one it left) reloads its cached configuration."""
    return campaign_part_save(part=webhook, fields=fields)


def webhook_delete(*, webhook: Webhook) -> None:
    """Delete a webhook (and its deliveries); its campaign reloads its cached configuration."""
    campaign_part_delete(part=webhook)
