"""Money: exact parsing into micros, exact formatting back, the price of one impression."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.money import (
    MAX_MICROS,
    format_micros,
    impression_price,
    parse_micros,
    to_decimal,
    to_json_number,
)


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("2.50", 2_500_000),
        ("0", 0),
        ("0.000001", 1),
        ("1000000000", MAX_MICROS),
        ("2.5000000", 2_500_000),  # trailing zeros beyond 6 places are exact
        ("007.1", 7_100_000),
        (2, 2_000_000),
        (0.1, 100_000),
        (2.5, 2_500_000),
        (Decimal("2.50"), 2_500_000),
        (Decimal("2E+3"), 2_000_000_000),
        (Decimal("-0"), 0),
    ],
)
def test_parses_amounts_exactly(value: object, micros: int) -> None:
    assert parse_micros(value) == micros  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0.0000001", "more than 6 decimal places"),
        (Decimal("1.0000000000000000000000000000001"), "more than 6 decimal places"),
        (Decimal("1E-99999999"), "more than 6 decimal places"),
        ("-1", "must not be negative"),
        (-0.5, "must not be negative"),
        ("1000000000.000001", "at most"),
        (Decimal("1E+99999999"), "at most"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        (Decimal("-Infinity"), "finite"),
        ("NaN", "decimal number"),
        ("1e3", "decimal number"),
        (" 1", "decimal number"),
        ("1.", "decimal number"),
        (".5", "decimal number"),
        ("+1", "decimal number"),
        ("", "decimal number"),
        ("1,5", "decimal number"),
        (True, "boolean"),
        (None, "must be a number"),
        ([1], "must be a number"),
    ],
)
def test_rejects_what_is_not_an_exact_amount(value: object, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=problem) as caught:
        parse_micros(value, field="cpmBid")  # type: ignore[arg-type]
    assert caught.value.fields == ("cpmBid",)
    assert caught.value.message.startswith("cpmBid: ")


def test_sign_and_zero_are_allowed_only_when_asked() -> None:
    assert parse_micros("-0.25", allow_negative=True) == -250_000
    with pytest.raises(ValidationFailed, match="greater than 0"):
        parse_micros("0.000", allow_zero=False)


micros = st.integers(-MAX_MICROS, MAX_MICROS)


@given(micros)
def test_formatted_text_round_trips(amount: int) -> None:
    assert parse_micros(format_micros(amount), allow_negative=True) == amount


@given(micros)
def test_json_numbers_round_trip_through_json_text(amount: int) -> None:
    text = json.dumps({"bidPrice": to_json_number(amount)})
    assert parse_micros(json.loads(text)["bidPrice"], allow_negative=True) == amount
    as_decimal = json.loads(text, parse_float=Decimal)["bidPrice"]
    assert parse_micros(as_decimal, allow_negative=True) == amount


@given(micros)
def test_decimal_is_exact(amount: int) -> None:
    assert parse_micros(to_decimal(amount), allow_negative=True) == amount
    assert to_decimal(amount) * 1_000_000 == amount


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=0, max_value=10**9))
def test_any_six_place_decimal_is_accepted_exactly(value: Decimal) -> None:
    assert to_decimal(parse_micros(value)) == value
    assert to_decimal(parse_micros(format(value, "f"))) == value


@pytest.mark.parametrize(
    ("amount", "text", "number"),
    [
        (2_500_000, "2.50", 2.5),
        (2_500, "0.0025", 0.0025),
        (0, "0.00", 0.0),
        (1, "0.000001", 0.000001),
        (-1_000_000, "-1.00", -1.0),
        (MAX_MICROS - 1, "999999999.999999", 999999999.999999),
    ],
)
def test_formats_back_for_humans_and_json(amount: int, text: str, number: float) -> None:
    assert format_micros(amount) == text
    assert to_json_number(amount) == number


def test_json_number_refuses_amounts_a_float_cannot_carry() -> None:
    with pytest.raises(ValueError, match="exactly"):
        to_json_number(2**60 + 1)


@pytest.mark.parametrize(
    ("cpm", "price"),
    [
        (2_500_000, 2_500),
        (1_000, 1),
        (1_999, 1),
        (999, 0),
        (0, 0),
        (MAX_MICROS, MAX_MICROS // 1000),
    ],
)
def test_one_impression_costs_the_cpm_over_1000_rounded_down(cpm: int, price: int) -> None:
    assert impression_price(cpm) == price


@given(st.integers(0, MAX_MICROS))
def test_a_thousand_impressions_never_cost_more_than_the_cpm(cpm: int) -> None:
    assert 0 <= cpm - 1000 * impression_price(cpm) < 1000


def test_negative_cpm_has_no_price() -> None:
    with pytest.raises(ValueError):
        impression_price(-1)
