"""Floors in other currencies: the table of US dollars per unit that `imp.bidfloorcur` is read with.

We bid and answer in USD only. An impression whose floor is in a currency of this table has its
floor converted to USD (rounded up to a whole micro, so a bid at it is never below the
exchange's floor); any other currency is no bid for that impression, with the no-bid reason
`NBR_UNSUPPORTED_CURRENCY` when nothing else was bid.

The table is maintained by hand, a release at a time (docs/openrtb.md "Currencies"): rates are
the approximate reference rates of the date below, rounded UP to four significant places, so a
converted floor errs on the exchange's side. Add a currency by adding a line and its test.

Example::

    usd_floor_micros(Decimal("1.5"), "EUR")   # 1_746_000 (1.5 x 1.164)
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from shared_layer.kernel.money import Micros

__all__ = ["RATES_AS_OF", "USD_PER_UNIT", "usd_floor_micros"]

RATES_AS_OF: Final = "2026-11-30"

# US dollars for one unit of each currency (ISO 4217).
USD_PER_UNIT: Final[dict[str, Decimal]] = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.164"),
    "GBP": Decimal("1.324"),
    "CHF": Decimal("1.246"),
    "CAD": Decimal("0.7153"),
    "AUD": Decimal("0.6544"),
    "NZD": Decimal("0.5724"),
    "JPY": Decimal("0.006410"),
    "CNY": Decimal("0.1414"),
    "HKD": Decimal("0.1286"),
    "SGD": Decimal("0.7713"),
    "INR": Decimal("0.01120"),
    "KRW": Decimal("0.0006820"),
    "SEK": Decimal("0.1061"),
    "NOK": Decimal("0.09911"),
    "DKK": Decimal("0.1559"),
    "PLN": Decimal("0.2752"),
    "CZK": Decimal("0.04800"),
    "HUF": Decimal("0.003041"),
    "RON": Decimal("0.2288"),
    "TRY": Decimal("0.02360"),
    "BRL": Decimal("0.1877"),
    "MXN": Decimal("0.05460"),
    "ZAR": Decimal("0.05830"),
    "ILS": Decimal("0.3072"),
    "AED": Decimal("0.2723"),
}


def usd_floor_micros(cpm: Decimal, currency: str) -> Micros | None:
    """The CPM floor `cpm` in `currency` as USD micros rounded up, or None for an unknown currency.

    >>> usd_floor_micros(Decimal("2"), "USD"), usd_floor_micros(Decimal("1"), "XYZ")
    (2000000, None)
    """
    rate = USD_PER_UNIT.get(currency)
    if rate is None:
        return None
    return math.ceil((cpm * rate).scaleb(6))
