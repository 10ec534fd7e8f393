"""Money as integer micros: 1 unit of currency = 1,000,000 micros.

Why micros: a CPM of 2.50 buys one impression for 0.0025, and budgets are charged one impression
at a time, millions of times a day. Integers add up exactly in Python, in Redis (INCRBY) and in
events; floats do not. So money is parsed from the API's decimal text straight into integers with
`decimal.Decimal` (never through float arithmetic), stays an integer everywhere inside, and
becomes a decimal number again only at the edges: `to_decimal` for PostgreSQL's DECIMAL columns,
`to_json_number` for JSON responses.

The largest amount we accept is `MAX_MICROS` (one billion units). Below it every amount is exact
both as a Lua number in the Redis budget script (a double, exact up to 2**53 micros) and as a JSON
number (at most 15 significant digits, which a double round-trips).

Example::

    >>> cpm = parse_micros("2.50", field="cpmBid")
    >>> cpm, impression_price(cpm), format_micros(impression_price(cpm))
    (2500000, 2500, '0.0025')
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import TypeAlias

from shared_layer.kernel.errors import ValidationFailed

__all__ = [
    "MAX_MICROS",
    "MICROS_PER_UNIT",
    "Micros",
    "format_micros",
    "from_decimal",
    "impression_price",
    "parse_micros",
    "to_decimal",
    "to_json_number",
]

Micros: TypeAlias = int
MICROS_PER_UNIT: Micros = 1_000_000
MAX_MICROS: Micros = 1_000_000_000 * MICROS_PER_UNIT
IMPRESSIONS_PER_CPM = 1_000

_PLACES = 6
_MAX_AMOUNT = Decimal(MAX_MICROS).scaleb(-_PLACES)
# Plain decimal text only: no exponent, no sign other than a leading minus, no spaces.
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def parse_micros(
    value: str | int | float | Decimal,
    *,
    field: str = "amount",
    allow_negative: bool = False,
    allow_zero: bool = True,
) -> Micros:
    """Convert an amount from the API (decimal text or JSON number) into exact micros.

    Accepted: decimal text such as ``"2.50"``; `Decimal` (parse JSON with
    ``json.loads(body, parse_float=Decimal)`` to keep the client's digits); `int`; `float`, read
    through its shortest repr, which is the decimal text the JSON held for any amount we accept.
    Rejected with `ValidationFailed` naming `field`: booleans, NaN and infinities, exponents in
    text, amounts that are not a whole number of micros (more than 6 decimal places; trailing
    zeros are fine), negatives unless allowed, zero if not allowed, more than `MAX_MICROS`.

    >>> parse_micros("0.000001"), parse_micros(12), parse_micros(Decimal("2.5000000"))
    (1, 12000000, 2500000)
    """
    amount = _to_decimal_input(value, field)
    if not amount.is_finite():
        raise ValidationFailed(f"{field}: must be a finite number", [field])
    if amount.copy_abs() > _MAX_AMOUNT:
        raise ValidationFailed(f"{field}: must be at most {format_micros(MAX_MICROS)}", [field])
    # Enough precision that scaling never rounds: the check below must see every digit.
    exact = Context(prec=len(amount.as_tuple().digits) + _PLACES, Emax=MAX_EMAX, Emin=MIN_EMIN)
    scaled = amount.scaleb(_PLACES, exact)
    if scaled != scaled.to_integral_value():
        raise ValidationFailed(f"{field}: has more than {_PLACES} decimal places", [field])
    micros = int(scaled)
    if micros < 0 and not allow_negative:
        raise ValidationFailed(f"{field}: must not be negative", [field])
    if micros == 0 and not allow_zero:
        raise ValidationFailed(f"{field}: must be greater than 0", [field])
    return micros


def to_decimal(micros: Micros) -> Decimal:
    """The exact decimal value of `micros`, for PostgreSQL DECIMAL columns and arithmetic display.

    >>> to_decimal(2_500)
    Decimal('0.002500')
    """
    return Decimal(micros).scaleb(-_PLACES)


def from_decimal(amount: Decimal | None) -> Micros:
    """A PostgreSQL DECIMAL(18, 6) amount as exact micros (None, SQL's NULL: 0).

    >>> from_decimal(Decimal("1.000250")), from_decimal(None)
    (1000250, 0)
    """
    if amount is None:
        return 0
    scaled = Decimal(amount).scaleb(_PLACES)
    micros = int(scaled)
    if micros != scaled:
        raise ValueError(f"{amount} is not a whole number of micros")
    return micros


def format_micros(micros: Micros, *, min_places: int = 2) -> str:
    """Decimal text with at least `min_places` places and no needless trailing zeros.

    For logs, messages and CSV; JSON responses use `to_json_number`.

    >>> format_micros(2_500_000), format_micros(2_500), format_micros(-1)
    ('2.50', '0.0025', '-0.000001')
    """
    sign = "-" if micros < 0 else ""
    units, fraction = divmod(abs(micros), MICROS_PER_UNIT)
    digits = f"{fraction:06d}".rstrip("0").ljust(min_places, "0")
    return f"{sign}{units}.{digits}" if digits else f"{sign}{units}"


def to_json_number(micros: Micros) -> float:
    """The amount as a JSON number, for response bodies only (the specification's ``"bidPrice":
    2.50``).

    Python's json module writes a float by its shortest repr, which for every amount up to
    `MAX_MICROS` is exactly the decimal value (2_500_000 is written ``2.5``, the same JSON number
    as ``2.50``). No arithmetic may be done on the result. Raises ValueError rather than round an
    amount that a float cannot carry exactly.

    >>> to_json_number(2_500_000), to_json_number(2_500)
    (2.5, 0.0025)
    """
    exact = to_decimal(micros)
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise ValueError(f"{micros} micros cannot be written exactly as a JSON number")
    return number


def impression_price(cpm_micros: Micros) -> Micros:
    """The price of ONE impression at a CPM (cost per thousand impressions), in micros.

    Rounded down (floor), so that a thousand impressions never cost more than the CPM the
    advertiser bid; the at most 999 micros lost per thousand are the advertiser's gain. Campaign
    validation keeps CPMs at or above 0.001 so that an impression is never free.

    >>> impression_price(2_500_000), impression_price(1_999)
    (2500, 1)
    """
    if cpm_micros < 0:
        raise ValueError("a CPM cannot be negative")
    return cpm_micros // IMPRESSIONS_PER_CPM


def _to_decimal_input(value: object, field: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationFailed(f"{field}: must be a number, not a boolean", [field])
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValidationFailed(f"{field}: must be a decimal number such as 2.50", [field])
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # unreachable after the pattern, kept for safety
            raise ValidationFailed(f"{field}: is not a number", [field]) from exc
    raise ValidationFailed(f"{field}: must be a number", [field])
