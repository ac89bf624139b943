"""Tracking number writes shared by the admin and the API record every change with who made it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from calltrack.numbers.models import NumberEvent
from calltrack.numbers.services import records
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_edit_records_what_changed_and_who_changed_it():
    user = UserFactory()
    number = TrackingNumberFactory(label="old")
    campaign = CampaignFactory()
    records.tracking_number_update(tracking_number=number, fields={"label": "new", "campaign": campaign}, actor=user, reason="Changed through the API")
    event = NumberEvent.objects.get(tracking_number=number)
    assert event.actor == user and event.reason == "Changed through the API"
    assert event.changes["label"] == ["old", "new"] and event.changes["campaign"][1] == campaign.pk


def test_a_save_that_changes_nothing_records_nothing():
    number = TrackingNumberFactory()
    records.tracking_number_update(tracking_number=number, fields={}, actor=None)
    assert not NumberEvent.objects.exists()


def test_creation_is_recorded_and_the_static_cap_is_enforced():
    source = SourceFactory(static_number_cap=1)
    first = records.tracking_number_create(fields={"number": "+14155550170", "source": source, "campaign": CampaignFactory()}, reason="Added")
    assert NumberEvent.objects.filter(tracking_number=first, from_status="", to_status="active").exists()
    with pytest.raises(ValidationError) as info:
        records.tracking_number_create(fields={"number": "+14155550171", "source": source, "campaign": CampaignFactory()})
    assert "static number cap" in str(info.value.message_dict["source"])
