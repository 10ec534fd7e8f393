"""kernel.privacy: which signals allow storing anything about the user, and which allow interest
and age targeting; TCF v2 strings decoded by the library."""

from __future__ import annotations

import pytest

from shared_layer.kernel.privacy import Allowed, Signals, anonymous_user_id, is_anonymous, rules
from tests.unit.tcf_vectors import (
    ALL,
    NOT_OUR_VENDOR,
    NOTHING,
    PROFILE_ONLY,
    STORAGE_ONLY,
    VENDOR,
)

BOTH, NEITHER = Allowed(True, True), Allowed(False, False)
STORE_ONLY, PERSONALIZE_ONLY = Allowed(True, False), Allowed(False, True)


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        (Signals(), BOTH),
        (Signals(gdpr=False, consent=NOTHING), BOTH),
        (Signals(gdpr=True), NEITHER),
        (Signals(gdpr=True, consent="not a consent string"), NEITHER),
        (Signals(gdpr=True, consent=ALL), BOTH),
        (Signals(gdpr=True, consent=STORAGE_ONLY), STORE_ONLY),
        (Signals(gdpr=True, consent=PROFILE_ONLY), PERSONALIZE_ONLY),
        (Signals(gdpr=True, consent=NOT_OUR_VENDOR), NEITHER),
        (Signals(gdpr=True, consent=NOTHING), NEITHER),
        (Signals(coppa=True), NEITHER),
        (Signals(gdpr=True, consent=ALL, coppa=True), NEITHER),
        (Signals(lmt=True), PERSONALIZE_ONLY),
        (Signals(dnt=True, gdpr=True, consent=ALL), PERSONALIZE_ONLY),
        (Signals(us_privacy="1YY-"), NEITHER),
        (Signals(us_privacy="1YYN"), NEITHER),
        (Signals(us_privacy="1YN-"), BOTH),
        (Signals(us_privacy="1---"), BOTH),
        (Signals(gpp="DBABMA~x", gpp_sid=(2,)), BOTH),
    ],
    ids=[
        "no signal", "gdpr 0", "gdpr without consent", "gdpr with garbage", "purposes 1 3 4",
        "purpose 1 only", "purposes 3 4 only", "another vendor", "nothing consented", "coppa",
        "coppa beats consent", "lmt", "dnt beats consent", "us privacy 1YY-", "us privacy 1YYN",
        "us privacy 1YN-", "us privacy unknown", "gpp only",
    ],
)  # fmt: skip
def test_the_privacy_table(signals, expected):
    assert rules(signals, vendor_id=VENDOR) == expected


def test_without_a_vendor_id_no_gdpr_consent_names_us():
    assert rules(Signals(gdpr=True, consent=ALL), vendor_id=None) == NEITHER
    assert rules(Signals(gdpr=True, consent=ALL), vendor_id=0) == NEITHER  # 0: none (stack.yml)


def test_an_anonymous_user_is_unique_per_request_and_recognised():
    one, two = anonymous_user_id("req-1"), anonymous_user_id("req-2")
    assert one != two and is_anonymous(one) and not is_anonymous("user-1")
    assert len(anonymous_user_id("r" * 500)) == 128


def test_serve_and_bid_parameters_apply_the_same_rules():
    from shared_layer.bidding.service.bid_client import bid_request_from_query
    from shared_layer.kernel.errors import ValidationFailed

    base = {"userId": "user-1", "placementId": "p-1", "age": "30", "interests": "tech"}

    def ask(**params):
        query = {**base, **params}
        return bid_request_from_query(query, vendor_id=VENDOR, request_id="req-9")

    assert (ask().user_id, ask().age) == ("user-1", 30)
    assert (ask(gdpr="1", gdpr_consent=ALL).user_id, ask(gdpr="1", gdpr_consent=ALL).age) == (
        "user-1", 30
    )  # fmt: skip
    for restricted in (ask(gdpr="1"), ask(coppa="1"), ask(us_privacy="1YY-")):
        assert restricted.user_id == "anon:req-9" and restricted.age is None
        assert restricted.interests == frozenset()
    storage_only = ask(gdpr="1", gdpr_consent=STORAGE_ONLY)
    assert storage_only.user_id == "user-1" and storage_only.age is None
    for bad in ({"gdpr": "2"}, {"coppa": "yes"}, {"us_privacy": "x" * 5000}):
        with pytest.raises(ValidationFailed):
            ask(**bad)
