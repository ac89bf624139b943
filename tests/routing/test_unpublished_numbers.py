"""The "never published" spam rule (issue 28, a test-dial pattern): calls to a pool number no visitor was ever shown,
or to a static number that names no source, label or marketing data, score ``unpublished_number``; the rule reads
only the tracking number's row (loaded with the call) and is tuned by its weight and ``unpublished_static``."""

from __future__ import annotations

import pytest
from django.utils import timezone

from routing.spam import number_unpublished
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import Call
from tracking.spam_rules import SpamAction

pytestmark = pytest.mark.django_db
WORDS = "the number dialled was never published (no visitor shown it, no source or label): a test-dial pattern"


def scored(twilio, tn, sid="CA100"):
    Flow(twilio, tn, sid=sid).start(StirVerstat="TN-Validation-Passed-A")
    return Call.objects.get(call_sid=sid).state_spam


def test_a_pool_number_no_visitor_was_ever_shown_scores_until_dni_shows_it(twilio):
    campaign = CampaignFactory(spam_action=SpamAction.TAG)
    line = handler(campaign)
    pool = NumberPoolFactory(campaign=campaign, source=SourceFactory())
    tn = TrackingNumberFactory(campaign=None, kind="pool", pool=pool)
    spam = scored(twilio, tn, "CA1")
    assert (spam.score, spam.codes, spam.reasons) == (30, ("unpublished_number",), (WORDS,))
    type(tn).objects.filter(pk=tn.pk).update(last_assigned_at=timezone.now())  # DNI showed it to a visitor
    assert scored(twilio, tn, "CA2").codes == ()
    assert Call.objects.get(call_sid="CA2").handler_id == line.pk


@pytest.mark.parametrize(("number", "rules", "unpublished"), [
    ({}, {}, True),                                              # nothing says where it is shown
    ({"label": "Billboard I-95 north"}, {}, False),              # its label says where
    ({"marketing_data": {"utm_source": "radio"}}, {}, False),    # fixed data for an offline promotion
    ({"source": "publisher"}, {}, False),                        # a source is credited for it
    ({}, {"unpublished_static": False}, False),                  # only pool numbers are judged
    ({}, {"weights": {"unpublished_number": 0}}, False),         # the rule turned off
])
def test_a_static_number_is_published_by_its_source_label_or_data(twilio, number, rules, unpublished):
    campaign = CampaignFactory(spam_action=SpamAction.REJECT, spam_threshold=30, spam_rules=rules)
    line = handler(campaign)
    if number.get("source") == "publisher":
        number["source"] = SourceFactory()
    tn = TrackingNumberFactory(campaign=campaign, **number)
    doc = Flow(twilio, tn).start(StirVerstat="TN-Validation-Passed-A")
    call = Call.objects.get()
    assert ("unpublished_number" in call.state_spam.codes) is unpublished
    # At the threshold of 30 the rule alone rejects the call; below it the call is routed.
    assert ([el.tag for el in doc] == ["Reject"]) is unpublished
    assert unpublished or dialled(doc) == [line.receiving_number.number]


def test_the_rule_is_a_plain_function_of_the_numbers_row():
    now = timezone.now()
    assert number_unpublished(pool_id=1, last_assigned_at=None, source_id=5, label="x", marketing_data={}, count_static=True)
    assert not number_unpublished(pool_id=1, last_assigned_at=now, source_id=None, label="", marketing_data={}, count_static=True)
    assert number_unpublished(pool_id=None, last_assigned_at=None, source_id=None, label="  ", marketing_data={}, count_static=True)
    assert not number_unpublished(pool_id=None, last_assigned_at=None, source_id=None, label="", marketing_data={}, count_static=False)
