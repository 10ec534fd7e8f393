"""The events of the pipeline: one model for impressions and clicks, their topics and JSON shape.

Why one model: both event types carry the same fields (the specification's event schema), both are
counted by the same aggregation step, and both are keyed by campaignId so that one campaign's
events stay in order on one partition. `AdEvent.to_json` writes the specification's schema plus
``impressionId`` and ``priceMicros`` (docs/specification.md); `parse_event` reads it back strictly,
without floats: money stays integer micros. Reading is on the aggregation's hot path, so a msgspec
Struct decodes and checks a well-formed event in one pass; anything it does not accept as it is
(an error, or a UUID not in canonical form) goes to the careful reader, which accepts what it
can and names every bad field of what it cannot.

Identity, which is what makes redelivery harmless downstream:

- an impression's ``eventId`` IS its ``impressionId``, drawn by bid when it charges the budget;
- a click's ``eventId`` is derived from the impression it belongs to (`click_event_id`), so a
  second click on one impression has the same id and counts once, even if Redis forgot the
  click-deduplication key.

Example::

    event = AdEvent.impression(impression_id=str(uuid.uuid4()), campaign_id=c, ad_id=a,
                               user_id="u-1", placement_id="p-1", bid_cpm_micros=2_500_000,
                               price_micros=2_500, country="US", device_type="mobile")
    producer.produce(event.topic, key=event.key, value=event.to_bytes())
    assert parse_event(event.to_bytes()) == event
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.money import MAX_MICROS, Micros, parse_micros, to_json_number

__all__ = [
    "CLICKS_TOPIC",
    "EVENT_TOPICS",
    "IMPRESSIONS_TOPIC",
    "AdEvent",
    "EventType",
    "WireEvent",
    "click_event_id",
    "events_from_wire",
    "parse_event",
]

IMPRESSIONS_TOPIC: Final = "impressions"
CLICKS_TOPIC: Final = "clicks"
EventType = Literal["impression", "click"]
EVENT_TOPICS: Final[dict[str, str]] = {"impression": IMPRESSIONS_TOPIC, "click": CLICKS_TOPIC}

# Clicks get name-based (v5) ids in this namespace: uuid5(namespace, impression id).
_CLICK_NAMESPACE: Final = uuid.UUID("6f1c2a4e-4d0b-5b7e-9c1e-0d5a7c3b9e21")
_MAX_TEXT: Final = 255  # events_log's VARCHAR(255) for user and placement ids
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_MAX_EVENT_BYTES: Final = 16_384


def click_event_id(impression_id: str) -> str:
    """The one event id every click on `impression_id` gets.

    >>> click_event_id("0b6d1a2e-0000-4000-8000-000000000001") == click_event_id(
    ...     "0b6d1a2e-0000-4000-8000-000000000001")
    True
    """
    return str(uuid.uuid5(_CLICK_NAMESPACE, impression_id))


class AdEvent(msgspec.Struct, frozen=True):
    """One impression or click, as it travels through Kafka (money in micros).

    A frozen msgspec Struct rather than a dataclass: the aggregation functions make one per
    event, and a Struct is built in C (a tenth of a frozen dataclass's time).

    `price_micros` is what the impression was charged (0 for a click); `bid_cpm_micros` is the
    winning CPM bid (the specification's ``bidPrice``). `timestamp` is timezone-aware UTC; its UTC
    date is the day the event counts for.
    """

    event_id: str
    event_type: EventType
    timestamp: datetime
    impression_id: str
    campaign_id: str
    ad_id: str
    user_id: str
    placement_id: str
    bid_cpm_micros: Micros
    price_micros: Micros
    country: str | None = None
    device_type: str | None = None

    @classmethod
    def impression(
        cls,
        *,
        impression_id: str,
        campaign_id: str,
        ad_id: str,
        user_id: str,
        placement_id: str,
        bid_cpm_micros: Micros,
        price_micros: Micros,
        country: str | None = None,
        device_type: str | None = None,
        at: datetime | None = None,
    ) -> AdEvent:
        return cls(
            event_id=impression_id,
            event_type="impression",
            timestamp=_utc(at or datetime.now(UTC)),
            impression_id=impression_id,
            campaign_id=campaign_id,
            ad_id=ad_id,
            user_id=user_id,
            placement_id=placement_id,
            bid_cpm_micros=bid_cpm_micros,
            price_micros=price_micros,
            country=country,
            device_type=device_type,
        )

    @classmethod
    def click(
        cls,
        *,
        impression_id: str,
        campaign_id: str,
        ad_id: str,
        user_id: str,
        placement_id: str,
        bid_cpm_micros: Micros = 0,
        country: str | None = None,
        device_type: str | None = None,
        at: datetime | None = None,
    ) -> AdEvent:
        """A click on `impression_id`: the impression's fields, no price, its own event id."""
        shown = cls.impression(
            impression_id=impression_id,
            campaign_id=campaign_id,
            ad_id=ad_id,
            user_id=user_id,
            placement_id=placement_id,
            bid_cpm_micros=bid_cpm_micros,
            price_micros=0,
            country=country,
            device_type=device_type,
            at=at,
        )
        return msgspec.structs.replace(
            shown, event_id=click_event_id(impression_id), event_type="click"
        )

    @property
    def topic(self) -> str:
        return EVENT_TOPICS[self.event_type]

    @property
    def key(self) -> bytes:
        """The Kafka key: the campaign id, so one campaign's events keep their order."""
        return self.campaign_id.encode()

    @property
    def day(self) -> date:
        """The UTC day the event counts for."""
        return self.timestamp.date()

    def to_json(self) -> dict[str, Any]:
        """The specification's event schema plus impressionId and priceMicros (camelCase)."""
        body: dict[str, Any] = {
            "eventId": self.event_id,
            "timestamp": self.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "eventType": self.event_type,
            "userId": self.user_id,
            "campaignId": self.campaign_id,
            "adId": self.ad_id,
            "placementId": self.placement_id,
            "bidPrice": to_json_number(self.bid_cpm_micros),
            "impressionId": self.impression_id,
            "priceMicros": self.price_micros,
        }
        if self.country is not None:
            body["country"] = self.country
        if self.device_type is not None:
            body["deviceType"] = self.device_type
        return body

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_TEXT)]


# An id as `to_json` writes it (lower-case canonical form); any other spelling of a UUID is left
# to the careful reader, which accepts and canonicalises it. The decoder checks the length; the
# form is checked by `_check_canonical` for all events of a batch at once (a pattern on each id
# field cost 2.2 us per event, three fifths of decoding a batch).
_Uuid = Annotated[str, msgspec.Meta(min_length=36, max_length=36)]
_UUID_DASHES: Final = (8, 13, 18, 23)
_LOWER_HEX = re.compile(r"[0-9a-f]*")
_CAPITALS = re.compile(r"[A-Z]*")


class WireEvent(msgspec.Struct, frozen=True):
    """The JSON shape `to_json` writes, as msgspec checks it in the decoding pass."""

    eventId: _Uuid
    timestamp: datetime
    eventType: EventType
    userId: _Text
    campaignId: _Uuid
    adId: _Uuid
    placementId: _Text
    impressionId: _Uuid
    priceMicros: Annotated[int, msgspec.Meta(ge=0, le=MAX_MICROS)]
    bidPrice: Decimal = Decimal(0)  # decoded from the JSON number's text: exact
    country: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] | None = None  # A-Z: below
    deviceType: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None


_WIRE: Final = msgspec.json.Decoder(WireEvent)


def parse_event(raw: bytes | str | dict[str, Any]) -> AdEvent:
    """Read an event from its JSON (bytes, text or already-decoded object), strictly.

    Raises ValidationFailed naming every bad field: a malformed event must be set aside by the
    caller, never half-counted.
    """
    if not isinstance(raw, dict) and len(raw) <= _MAX_EVENT_BYTES:
        try:
            return events_from_wire([_WIRE.decode(raw)])[0]
        except (msgspec.DecodeError, ValueError):
            pass  # the careful reader decides, and names what is wrong
    return _parse_carefully(raw)


def events_from_wire(wires: Sequence[WireEvent]) -> list[AdEvent]:
    """The events of decoded wire shapes; ValueError if any of them is for the careful reader
    to judge (an id not in lower-case canonical form, a country not two capitals, a zone-less
    time, a price it must explain)."""
    _check_canonical(wires)
    return [_event_from_wire(wire) for wire in wires]


def _check_canonical(wires: Sequence[WireEvent]) -> None:
    """The checks the decoder leaves out, in a few passes over the whole batch's text: every id
    (36 characters, the decoder made sure) has its dashes in place and lower-case hex between
    them, every country (2 characters) is two capitals."""
    ids = "".join([w.eventId + w.campaignId + w.adId + w.impressionId for w in wires])
    count = 4 * len(wires)
    for dash in _UUID_DASHES:
        if ids[dash::36] != "-" * count:
            raise ValueError("an id is not a lower-case canonical UUID")
    digits = ids.replace("-", "")
    if len(digits) != 32 * count or not _LOWER_HEX.fullmatch(digits):
        raise ValueError("an id is not a lower-case canonical UUID")
    if not _CAPITALS.fullmatch("".join([w.country for w in wires if w.country is not None])):
        raise ValueError("a country is not two capital letters")


def _event_from_wire(wire: WireEvent) -> AdEvent:
    moment = wire.timestamp
    if moment.tzinfo is None or (wire.eventType == "click" and wire.priceMicros):
        raise ValueError("not for the fast path")
    scaled = wire.bidPrice.scaleb(6)  # exact: Decimal arithmetic, never a float
    if not (0 <= scaled <= MAX_MICROS and scaled == scaled.to_integral_value()):
        raise ValueError("not for the fast path")
    if moment.tzinfo is not UTC or moment.microsecond % 1000:
        moment = _utc(moment)
    return AdEvent(
        event_id=wire.eventId,
        event_type=wire.eventType,
        timestamp=moment,
        impression_id=wire.impressionId,
        campaign_id=wire.campaignId,
        ad_id=wire.adId,
        user_id=wire.userId,
        placement_id=wire.placementId,
        bid_cpm_micros=int(scaled),
        price_micros=wire.priceMicros,
        country=wire.country,
        device_type=wire.deviceType,
    )


def _parse_carefully(raw: bytes | str | dict[str, Any]) -> AdEvent:
    data = _load(raw)
    problems: list[str] = []
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or event_type not in EVENT_TOPICS:  # [] is unhashable
        problems.append("eventType")
    event_id = _uuid_field(data, "eventId", problems)
    impression_id = _uuid_field(data, "impressionId", problems)
    campaign_id = _uuid_field(data, "campaignId", problems)
    ad_id = _uuid_field(data, "adId", problems)
    user_id = _text_field(data, "userId", problems)
    placement_id = _text_field(data, "placementId", problems)
    country = _text_field(data, "country", problems, required=False, limit=2)
    if country is not None and not _COUNTRY.match(country):
        problems.append("country")
    device_type = _text_field(data, "deviceType", problems, required=False, limit=16)
    bid_cpm = _amount_field(data.get("bidPrice", 0), "bidPrice", problems)
    price = _micros_field(data.get("priceMicros"), "priceMicros", problems)
    timestamp = _timestamp(data.get("timestamp"), problems)
    if event_type == "click" and price:
        problems.append("priceMicros")
    if problems:
        names = sorted(set(problems))
        raise ValidationFailed(f"invalid event: bad {', '.join(names)}", names)
    return AdEvent(
        event_id=event_id,  # type: ignore[arg-type]
        event_type=event_type,  # type: ignore[arg-type]
        timestamp=timestamp,  # type: ignore[arg-type]
        impression_id=impression_id,  # type: ignore[arg-type]
        campaign_id=campaign_id,  # type: ignore[arg-type]
        ad_id=ad_id,  # type: ignore[arg-type]
        user_id=user_id,  # type: ignore[arg-type]
        placement_id=placement_id,  # type: ignore[arg-type]
        bid_cpm_micros=bid_cpm,  # type: ignore[arg-type]
        price_micros=price,  # type: ignore[arg-type]
        country=country,
        device_type=device_type,
    )


def _text_field(
    data: dict[str, Any], name: str, problems: list[str], *, required: bool = True,
    limit: int = _MAX_TEXT,
) -> str | None:  # fmt: skip
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        problems.append(name)
        return None
    return value


def _uuid_field(data: dict[str, Any], name: str, problems: list[str]) -> str | None:
    """A UUID in its canonical text (what events_log stores and compares)."""
    value = data.get(name)
    if isinstance(value, str) and _CANONICAL_UUID.match(value):
        return value  # the common case, without building a UUID object
    # ASCII only: Python's UUID parser also reads other scripts' digits ("\u0660" as 0), which
    # would give two different ids one canonical text.
    if not isinstance(value, str) or not value.isascii() or not value or len(value) > _MAX_TEXT:
        problems.append(name)
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        problems.append(name)
        return None


def _micros_field(value: Any, name: str, problems: list[str]) -> Micros | None:
    """An integer number of micros (priceMicros): nothing else is exact enough."""
    if type(value) is not int or not 0 <= value <= MAX_MICROS:
        problems.append(name)
        return None
    return value


def _amount_field(value: Any, name: str, problems: list[str]) -> Micros | None:
    """A decimal amount in currency units (the specification's bidPrice), as exact micros.

    A float comes from JSON decoded by someone else (a batch body); its shortest text form
    (`repr`) is the decimal the sender wrote, read here without float arithmetic.
    """
    if type(value) is float:
        fast = _float_micros(value)
        if fast is not None and fast <= MAX_MICROS:
            return fast
        value = Decimal(repr(value))
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        problems.append(name)
        return None
    try:
        amount = parse_micros(value, field=name)
    except ValidationFailed:
        problems.append(name)
        return None
    if not 0 <= amount <= MAX_MICROS:
        problems.append(name)
        return None
    return amount


def _float_micros(value: float) -> Micros | None:
    """2.5 -> 2_500_000 exactly, from the float's shortest decimal text (what the sender
    wrote); None for anything else (an exponent, a sign, nan, finer than a micro), which the
    careful path then decides.

    >>> _float_micros(2.5), _float_micros(1000.0), _float_micros(1e-07), _float_micros(-2.5)
    (2500000, 1000000000, None, None)
    """
    whole, _, fraction = repr(value).partition(".")
    if whole.isdigit() and fraction.isdigit() and len(fraction) <= 6:
        return int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))
    return None


def _load(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw  # already decoded by someone else (a batch body); read, never changed
    if len(raw) > _MAX_EVENT_BYTES:
        raise ValidationFailed("invalid event: larger than 16 KiB", ["body"])
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("invalid event: not JSON", ["body"]) from exc
    if not isinstance(data, dict):
        raise ValidationFailed("invalid event: not a JSON object", ["body"])
    return data


def _timestamp(value: Any, problems: list[str]) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        problems.append("timestamp")
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append("timestamp")
        return None
    if moment.tzinfo is None:
        problems.append("timestamp")
        return None
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    """UTC, at the millisecond precision the JSON form keeps (so an event round-trips)."""
    if moment.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
