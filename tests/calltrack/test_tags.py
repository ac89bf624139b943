import pytest

from calltrack import tags


def test_all_criteria_must_match_case_insensitively():
    criteria = tags.validate([{"key": "caller_state", "op": "one_of", "value": "ca, nv"}, {"key": "utm_source", "op": "equals", "value": "Google"}])
    assert tags.matches(criteria, {"caller_state": "CA", "utm_source": "google"}) == (True, "")
    ok, why = tags.matches(criteria, {"caller_state": "TX", "utm_source": "google"})
    assert not ok and "caller_state in [ca, nv] (call has TX)" in why


def test_not_one_of_and_present():
    criteria = tags.validate([{"key": "caller_zip", "op": "not_one_of", "value": ["10001"]}, {"key": "gclid", "op": "present"}])
    assert tags.matches(criteria, {"caller_zip": "94103", "gclid": "x"})[0]
    assert not tags.matches(criteria, {"caller_zip": "10001", "gclid": "x"})[0]
    assert not tags.matches(criteria, {"caller_zip": "94103"})[0]


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"key": "state", "op": "bigger"}], "op 'bigger'"),
        ([{"key": "", "op": "present"}], "key ''"),
        ([{"key": "state", "op": "equals"}], "needs a value"),
        ([{"key": "state", "op": "one_of", "value": []}], "at least one value"),
        ({"key": "state"}, "must be a list"),
        ([{"key": "state", "op": "present", "extra": 1}], "unknown fields"),
    ],
)
def test_bad_criteria_are_refused(bad, message):
    with pytest.raises(tags.TagRuleError, match=message):
        tags.validate(bad)


def test_filters_reject_wins_and_accept_rules_must_match_one():
    filters = tags.validate_filters(
        [{"action": "accept", "key": "caller_state", "op": "one_of", "value": ["CA", "NY"]}, {"action": "reject", "key": "caller_zip", "op": "equals", "value": "10001"}]
    )
    assert tags.filter_verdict(filters, {"caller_state": "CA", "caller_zip": "94103"}) == (True, "")
    assert tags.filter_verdict(filters, {"caller_state": "TX"}) == (False, "matched no accept filter")
    accepted, reason = tags.filter_verdict(filters, {"caller_state": "NY", "caller_zip": "10001"})
    assert not accepted and "caller_zip" in reason


def test_filter_needs_an_action():
    with pytest.raises(tags.TagRuleError, match="action"):
        tags.validate_filters([{"key": "caller_state", "op": "present"}])
