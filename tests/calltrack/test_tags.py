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


def test_numeric_rules_read_the_tag_as_a_number():
    criteria = tags.validate([{"key": "age", "op": "less_than", "value": "65"}, {"key": "income", "op": "greater_than", "value": 50000}])
    assert tags.matches(criteria, {"age": "34", "income": "$72,000"})[0]
    ok, why = tags.matches(criteria, {"age": "70", "income": "72000"})
    assert not ok and why == "age < 65 (call has 70)"
    assert not tags.matches(criteria, {"age": "thirty", "income": "72000"})[0]
    assert not tags.matches(criteria, {"income": "72000"})[0]
    assert not tags.matches(criteria, {"age": "30", "income": "50000"})[0]  # strictly greater


def test_between_is_inclusive_and_needs_low_then_high():
    (rule,) = tags.validate([{"key": "age", "op": "between", "value": "18, 64"}])
    assert rule["value"] == ["18", "64"]
    assert [tags.matches([rule], {"age": a})[0] for a in ("17", "18", "40.5", "64", "65")] == [False, True, True, True, False]
    assert tags.describe(rule, "70") == "age between 18 and 64 (call has 70)"
    with pytest.raises(tags.TagRuleError, match="low number first"):
        tags.validate([{"key": "age", "op": "between", "value": [64, 18]}])
    with pytest.raises(tags.TagRuleError, match="two numbers"):
        tags.validate([{"key": "age", "op": "between", "value": "18"}])


def test_contains_and_starts_with_compare_text_case_insensitively():
    criteria = tags.validate([{"key": "utm_campaign", "op": "contains", "value": "Roof"}, {"key": "caller_zip", "op": "starts_with", "value": "941"}])
    assert tags.matches(criteria, {"utm_campaign": "spring-roofing", "caller_zip": "94103"})[0]
    ok, why = tags.matches(criteria, {"utm_campaign": "spring-roofing", "caller_zip": "10001"})
    assert not ok and why == "caller_zip starts with '941' (call has 10001)"
    assert not tags.matches(criteria, {"caller_zip": "94103"})[0]


@pytest.mark.parametrize("value", ["abc", "1e400", "NaN", "Infinity", True, None, "9" * 40])
def test_numeric_rules_refuse_what_is_not_a_storable_number(value):
    with pytest.raises(tags.TagRuleError, match="needs a number"):
        tags.validate([{"key": "age", "op": "less_than", "value": value}])


def test_filters_accept_the_new_operators():
    filters = tags.validate_filters([{"action": "reject", "key": "age", "op": "less_than", "value": "18"}])
    assert tags.filter_verdict(filters, {"age": "16"}) == (False, "rejected by filter age < 18 (call has 16)")
    assert tags.filter_verdict(filters, {"age": "30"}) == (True, "")
