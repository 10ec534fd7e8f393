"""OpenRTB 2.6 as our auction understands it: typed decoding and the explicit mapping to targeting.

Why its own module: exchanges and header-bidding servers (Prebid Server) speak OpenRTB, not our
the specification's JSON. A BidRequest is decoded once, here, into msgspec Structs (strict types;
unknown fields and every other ``ext`` ignored, as the specification asks of a bidder); each
impression is then decoded and judged alone (`plan_auctions`), and each usable banner impression
becomes one `kernel.models.BidRequest` for the same auction `bid` runs. The privacy signals
(2.6 places, else 2.5 ``ext`` places, `Signals`) decide what the auction may know of the user
(`kernel.privacy`). Nothing here does I/O; `openrtb.service.exchange` reserves and settles, the
`openrtb` function is the HTTP edge.

The mapping (docs/openrtb.md says why):

| OpenRTB                                   | ours                                              |
|-------------------------------------------|---------------------------------------------------|
| ``imp.tagid``, ``site.id``/``app.id``,    | ``placementId`` (`_placement`)                    |
| ``site.domain``/``page``, ``app.bundle``  |                                                   |
| ``user.id``, else ``user.buyeruid``       | ``userId`` (else, or without consent: anonymous)  |
| ``device.geo.country`` (alpha-3)          | ``countryCode`` (alpha-2, `ALPHA3_TO_ALPHA2`)     |
| ``device.devicetype`` (AdCOM DeviceType)  | ``deviceType`` (`DEVICE_TYPES_BY_ADCOM`)          |
| ``user.yob``                              | ``userAttributes.age`` (the clock's year - yob)   |
| ``user.kwarray``, else ``user.keywords``  | ``userAttributes.interests``                      |
| ``imp.bidfloor`` (CPM, ``bidfloorcur``)   | ``floor_micros`` in USD (`currency`, rounded up)  |
| first non-zero ``imp.banner.format``, else ``w``/``h`` | the bid's ``w``/``h``                |

An impression without a banner or a usable size, or with a floor in a currency we do not know,
gets no bid; so does a test request (``test: 1``). An impression that breaks the specification
is a problem of its own (no bid); the request is a `ValidationFailed` (400) only when every
impression is one, or when a request-wide field is wrong (a country that is not alpha-3, a year
of birth in the future).

Example::

    request = decode_bid_request(inflate(body, "gzip"))
    for slot in plan_auctions(request, now=utc_now(), vendor_id=1234).slots:
        ...                                     # bid on `slot.request`, answer `slot.imp_id`
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlsplit

import msgspec

from shared_layer.kernel import privacy
from shared_layer.kernel.errors import PayloadTooLarge, ValidationFailed
from shared_layer.kernel.models import (
    MAX_LIST_ITEMS,
    MAX_REQUEST_AGE,
    BidRequest,
    DeviceType,
    UserAttributes,
)
from shared_layer.kernel.money import MAX_MICROS, Micros, to_json_number
from shared_layer.openrtb.domain.currency import usd_floor_micros

__all__ = [
    "ALPHA3_TO_ALPHA2",
    "CURRENCY",
    "DEVICE_TYPES_BY_ADCOM",
    "MAX_IMPS",
    "MAX_OPENRTB_REQUEST_BYTES",
    "MTYPE_BANNER",
    "NBR_INSUFFICIENT_TIME",
    "NBR_INVALID_REQUEST",
    "NBR_UNSUPPORTED_CURRENCY",
    "UNKNOWN_PLACEMENT",
    "AuctionPlan",
    "AuctionSlot",
    "OpenRtbBid",
    "OpenRtbRequest",
    "Signals",
    "auction_price_micros",
    "bid_response",
    "decode_bid_request",
    "floor_micros",
    "inflate",
    "no_bid_response",
    "plan_auctions",
    "signals",
]

CURRENCY: Final = "USD"
MAX_IMPS: Final = 20
MAX_OPENRTB_REQUEST_BYTES: Final = 256 * 1024
_MAX_ID: Final = 128

# ISO 3166-1: every alpha-3 code with its alpha-2 code (the 249 of ISO 3166-1, from Debian's
# iso-codes 4.15), plus Kosovo's user-assigned XKX -> XK, which exchanges send.
ALPHA3_TO_ALPHA2: Final[dict[str, str]] = {
    "ABW": "AW",
    "AFG": "AF",
    "AGO": "AO",
    "AIA": "AI",
    "ALA": "AX",
    "ALB": "AL",
    "AND": "AD",
    "ARE": "AE",
    "ARG": "AR",
    "ARM": "AM",
    "ASM": "AS",
    "ATA": "AQ",
    "ATF": "TF",
    "ATG": "AG",
    "AUS": "AU",
    "AUT": "AT",
    "AZE": "AZ",
    "BDI": "BI",
    "BEL": "BE",
    "BEN": "BJ",
    "BES": "BQ",
    "BFA": "BF",
    "BGD": "BD",
    "BGR": "BG",
    "BHR": "BH",
    "BHS": "BS",
    "BIH": "BA",
    "BLM": "BL",
    "BLR": "BY",
    "BLZ": "BZ",
    "BMU": "BM",
    "BOL": "BO",
    "BRA": "BR",
    "BRB": "BB",
    "BRN": "BN",
    "BTN": "BT",
    "BVT": "BV",
    "BWA": "BW",
    "CAF": "CF",
    "CAN": "CA",
    "CCK": "CC",
    "CHE": "CH",
    "CHL": "CL",
    "CHN": "CN",
    "CIV": "CI",
    "CMR": "CM",
    "COD": "CD",
    "COG": "CG",
    "COK": "CK",
    "COL": "CO",
    "COM": "KM",
    "CPV": "CV",
    "CRI": "CR",
    "CUB": "CU",
    "CUW": "CW",
    "CXR": "CX",
    "CYM": "KY",
    "CYP": "CY",
    "CZE": "CZ",
    "DEU": "DE",
    "DJI": "DJ",
    "DMA": "DM",
    "DNK": "DK",
    "DOM": "DO",
    "DZA": "DZ",
    "ECU": "EC",
    "EGY": "EG",
    "ERI": "ER",
    "ESH": "EH",
    "ESP": "ES",
    "EST": "EE",
    "ETH": "ET",
    "FIN": "FI",
    "FJI": "FJ",
    "FLK": "FK",
    "FRA": "FR",
    "FRO": "FO",
    "FSM": "FM",
    "GAB": "GA",
    "GBR": "GB",
    "GEO": "GE",
    "GGY": "GG",
    "GHA": "GH",
    "GIB": "GI",
    "GIN": "GN",
    "GLP": "GP",
    "GMB": "GM",
    "GNB": "GW",
    "GNQ": "GQ",
    "GRC": "GR",
    "GRD": "GD",
    "GRL": "GL",
    "GTM": "GT",
    "GUF": "GF",
    "GUM": "GU",
    "GUY": "GY",
    "HKG": "HK",
    "HMD": "HM",
    "HND": "HN",
    "HRV": "HR",
    "HTI": "HT",
    "HUN": "HU",
    "IDN": "ID",
    "IMN": "IM",
    "IND": "IN",
    "IOT": "IO",
    "IRL": "IE",
    "IRN": "IR",
    "IRQ": "IQ",
    "ISL": "IS",
    "ISR": "IL",
    "ITA": "IT",
    "JAM": "JM",
    "JEY": "JE",
    "JOR": "JO",
    "JPN": "JP",
    "KAZ": "KZ",
    "KEN": "KE",
    "KGZ": "KG",
    "KHM": "KH",
    "KIR": "KI",
    "KNA": "KN",
    "KOR": "KR",
    "KWT": "KW",
    "LAO": "LA",
    "LBN": "LB",
    "LBR": "LR",
    "LBY": "LY",
    "LCA": "LC",
    "LIE": "LI",
    "LKA": "LK",
    "LSO": "LS",
    "LTU": "LT",
    "LUX": "LU",
    "LVA": "LV",
    "MAC": "MO",
    "MAF": "MF",
    "MAR": "MA",
    "MCO": "MC",
    "MDA": "MD",
    "MDG": "MG",
    "MDV": "MV",
    "MEX": "MX",
    "MHL": "MH",
    "MKD": "MK",
    "MLI": "ML",
    "MLT": "MT",
    "MMR": "MM",
    "MNE": "ME",
    "MNG": "MN",
    "MNP": "MP",
    "MOZ": "MZ",
    "MRT": "MR",
    "MSR": "MS",
    "MTQ": "MQ",
    "MUS": "MU",
    "MWI": "MW",
    "MYS": "MY",
    "MYT": "YT",
    "NAM": "NA",
    "NCL": "NC",
    "NER": "NE",
    "NFK": "NF",
    "NGA": "NG",
    "NIC": "NI",
    "NIU": "NU",
    "NLD": "NL",
    "NOR": "NO",
    "NPL": "NP",
    "NRU": "NR",
    "NZL": "NZ",
    "OMN": "OM",
    "PAK": "PK",
    "PAN": "PA",
    "PCN": "PN",
    "PER": "PE",
    "PHL": "PH",
    "PLW": "PW",
    "PNG": "PG",
    "POL": "PL",
    "PRI": "PR",
    "PRK": "KP",
    "PRT": "PT",
    "PRY": "PY",
    "PSE": "PS",
    "PYF": "PF",
    "QAT": "QA",
    "REU": "RE",
    "ROU": "RO",
    "RUS": "RU",
    "RWA": "RW",
    "SAU": "SA",
    "SDN": "SD",
    "SEN": "SN",
    "SGP": "SG",
    "SGS": "GS",
    "SHN": "SH",
    "SJM": "SJ",
    "SLB": "SB",
    "SLE": "SL",
    "SLV": "SV",
    "SMR": "SM",
    "SOM": "SO",
    "SPM": "PM",
    "SRB": "RS",
    "SSD": "SS",
    "STP": "ST",
    "SUR": "SR",
    "SVK": "SK",
    "SVN": "SI",
    "SWE": "SE",
    "SWZ": "SZ",
    "SXM": "SX",
    "SYC": "SC",
    "SYR": "SY",
    "TCA": "TC",
    "TCD": "TD",
    "TGO": "TG",
    "THA": "TH",
    "TJK": "TJ",
    "TKL": "TK",
    "TKM": "TM",
    "TLS": "TL",
    "TON": "TO",
    "TTO": "TT",
    "TUN": "TN",
    "TUR": "TR",
    "TUV": "TV",
    "TWN": "TW",
    "TZA": "TZ",
    "UGA": "UG",
    "UKR": "UA",
    "UMI": "UM",
    "URY": "UY",
    "USA": "US",
    "UZB": "UZ",
    "VAT": "VA",
    "VCT": "VC",
    "VEN": "VE",
    "VGB": "VG",
    "VIR": "VI",
    "VNM": "VN",
    "VUT": "VU",
    "WLF": "WF",
    "WSM": "WS",
    "YEM": "YE",
    "ZAF": "ZA",
    "ZMB": "ZM",
    "ZWE": "ZW",
    "XKX": "XK",
}

_ALPHA2: Final = frozenset(ALPHA3_TO_ALPHA2.values())

# AdCOM 1.0 "Device Type" (OpenRTB 2.6 device.devicetype) -> our device types. Codes with no
# counterpart (6 connected device, 8 out-of-home) and codes AdCOM may add later map to none:
# such a request matches only campaigns that do not target a device type.
DEVICE_TYPES_BY_ADCOM: Final[dict[int, DeviceType]] = {
    1: "mobile",  # Mobile/Tablet (general)
    2: "desktop",  # Personal computer
    3: "ctv",  # Connected TV
    4: "mobile",  # Phone
    5: "tablet",  # Tablet
    7: "ctv",  # Set-top box
}

_NO_CONTROL_CHARS: Final = r"^[^\x00-\x1F\x7F]+\Z"
_ID_PATTERN: Final = re.compile(_NO_CONTROL_CHARS)
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_ID, pattern=_NO_CONTROL_CHARS)]
# A zero size is what exchanges send for "any": not an error, but no size we can answer with.
_Size = Annotated[int, msgspec.Meta(ge=0, le=100_000)]
_Price = Annotated[float, msgspec.Meta(ge=0, le=1e9)]
_Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]

# OpenRTB 2.6 section 5.24 / AdCOM no-bid reasons we answer with (``nbr``); 500+ are ours.
NBR_INVALID_REQUEST: Final = 2
NBR_INSUFFICIENT_TIME: Final = 15
NBR_UNSUPPORTED_CURRENCY: Final = 500
# AdCOM 1.0 "Creative Subtype / mtype": what kind of markup a bid carries.
MTYPE_BANNER: Final = 1
# The placement of an impression whose request names no inventory (no tagid, site or app).
UNKNOWN_PLACEMENT: Final = "openrtb:unknown-inventory"


class Format(msgspec.Struct, frozen=True):
    w: _Size | None = None
    h: _Size | None = None


class Banner(msgspec.Struct, frozen=True):
    format: tuple[Format, ...] | None = None
    w: _Size | None = None
    h: _Size | None = None


class Imp(msgspec.Struct, frozen=True):
    id: _Id
    banner: Banner | None = None
    tagid: str | None = None
    bidfloor: _Price = 0.0
    bidfloorcur: _Currency = CURRENCY


class Site(msgspec.Struct, frozen=True):
    id: str | None = None
    domain: str | None = None
    page: str | None = None


class App(msgspec.Struct, frozen=True):
    id: str | None = None
    bundle: str | None = None


class Geo(msgspec.Struct, frozen=True):
    country: str | None = None


class Device(msgspec.Struct, frozen=True):
    devicetype: int | None = None
    geo: Geo | None = None
    ifa: str | None = None
    lmt: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    dnt: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None


class UserExt(msgspec.Struct, frozen=True):
    """OpenRTB 2.5's places (Prebid Server's default): ``user.ext.consent`` and ``.eids``."""

    consent: str | None = None
    eids: list[Any] | None = None


class User(msgspec.Struct, frozen=True):
    id: str | None = None
    buyeruid: str | None = None
    yob: int | None = None
    keywords: str | None = None
    kwarray: tuple[str, ...] | None = None
    consent: str | None = None
    eids: list[Any] | None = None
    ext: msgspec.Raw = msgspec.Raw(b"null")


class RegsExt(msgspec.Struct, frozen=True):
    """OpenRTB 2.5's places: ``regs.ext.gdpr``, ``.us_privacy``, ``.gpp``, ``.gpp_sid``."""

    gdpr: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    us_privacy: str | None = None
    gpp: str | None = None
    gpp_sid: list[int] | None = None


class Regs(msgspec.Struct, frozen=True):
    coppa: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    gdpr: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    us_privacy: str | None = None
    gpp: str | None = None
    gpp_sid: list[int] | None = None
    ext: msgspec.Raw = msgspec.Raw(b"null")


class SourceExt(msgspec.Struct, frozen=True):
    schain: dict[str, Any] | None = None


class Source(msgspec.Struct, frozen=True):
    schain: dict[str, Any] | None = None
    ext: msgspec.Raw = msgspec.Raw(b"null")


class OpenRtbRequest(msgspec.Struct, frozen=True):
    """The fields of an OpenRTB 2.6 (or 2.5) BidRequest that we read; the rest is ignored.

    Each impression stays raw JSON until `plan_auctions` decodes it alone: one bad impression
    costs its own bid, not the request's.
    """

    id: _Id
    imp: Annotated[tuple[msgspec.Raw, ...], msgspec.Meta(min_length=1, max_length=MAX_IMPS)]
    site: Site | None = None
    app: App | None = None
    device: Device | None = None
    user: User | None = None
    regs: Regs | None = None
    source: Source | None = None
    tmax: Annotated[int, msgspec.Meta(ge=1)] | None = None
    cur: tuple[_Currency, ...] | None = None
    test: int = 0  # 0 live; anything else is treated as a test (never charged)


_DECODER: Final = msgspec.json.Decoder(OpenRtbRequest)
_IMP_DECODER: Final = msgspec.json.Decoder(Imp)
AUCTION_PRICE_MACRO: Final = "${AUCTION_PRICE}"
_PRICE_TEXT: Final = re.compile(r"[0-9]{1,12}(\.[0-9]{1,12})?")
_MSGSPEC_ROOT: Final = re.compile(r"`\$")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AuctionSlot:
    """One banner impression as our auction sees it, with what the answer must echo."""

    imp_id: str
    request: BidRequest
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Signals:
    """The request's privacy and supply signals, each read from its OpenRTB 2.6 place or, when
    that is absent, its 2.5 ``ext`` place (Prebid Server's default): the 2.6 place wins.

    | signal               | 2.6                  | 2.5 (``ext``)            |
    |----------------------|----------------------|--------------------------|
    | `privacy.gdpr`       | ``regs.gdpr``        | ``regs.ext.gdpr``        |
    | `privacy.consent`    | ``user.consent``     | ``user.ext.consent``     |
    | `privacy.us_privacy` | ``regs.us_privacy``  | ``regs.ext.us_privacy``  |
    | `privacy.gpp`        | ``regs.gpp``         | ``regs.ext.gpp``         |
    | `privacy.gpp_sid`    | ``regs.gpp_sid``     | ``regs.ext.gpp_sid``     |
    | `privacy.coppa`      | ``regs.coppa``       | (2.5 had it there too)   |
    | `privacy.lmt`, `dnt` | ``device.lmt/dnt``   | (the same)               |
    | `schain`             | ``source.schain``    | ``source.ext.schain``    |
    | `eids`               | ``user.eids``        | ``user.ext.eids``        |
    """

    privacy: privacy.Signals = field(default_factory=privacy.Signals)
    schain: dict[str, Any] | None = None
    eids: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class AuctionPlan:
    """What a BidRequest asks our auction for: the slots to bid on, and why the others get none.

    `problems` are impressions that break the specification (each named); `no_bid_reason` is
    the ``nbr`` to answer with when no slot wins (None: a plain 204).
    """

    slots: tuple[AuctionSlot, ...]
    problems: tuple[str, ...] = ()
    no_bid_reason: int | None = None
    signals: Signals = Signals()


@dataclass(frozen=True, slots=True)
class OpenRtbBid:
    """A bid for one impression, as the BidResponse carries it."""

    bid_id: str
    imp_id: str
    cpm_micros: Micros
    ad_id: str
    campaign_id: str
    redirect_url: str
    adm: str
    nurl: str
    burl: str
    w: int | None
    h: int | None
    lurl: str = ""


def decode_bid_request(body: bytes) -> OpenRtbRequest:
    """The BidRequest in `body`, its request-wide fields checked; `ValidationFailed` (400) naming
    the problem (any nesting depth included: a body nested too deeply is a 400, not a crash).

    >>> decode_bid_request(b'{"id":"r-1","imp":[{"id":"1","banner":{"w":300,"h":250}}]}').id
    'r-1'
    """
    if len(body) > MAX_OPENRTB_REQUEST_BYTES:
        raise ValidationFailed(f"a BidRequest is at most {MAX_OPENRTB_REQUEST_BYTES} bytes")
    try:
        return _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid BidRequest: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(f"the BidRequest is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValidationFailed(
            "the BidRequest is nested too deeply to be an OpenRTB request"
        ) from exc


def plan_auctions(
    request: OpenRtbRequest, *, now: datetime, vendor_id: int | None = None
) -> AuctionPlan:
    """Our auction's request for each impression we bid on; see the module doc.

    The privacy signals decide what the auction may know of the user (`kernel.privacy.rules`,
    with `vendor_id` our TCF vendor id): without storage the user is anonymous for this request
    alone, without personalisation the ad is contextual (no interests, no age).

    Every impression is judged alone: one that breaks the specification is a problem and gets no
    bid; the request is a `ValidationFailed` (400) only when every impression is one. Nothing is
    charged before the plan is complete.
    """
    found = signals(request)
    if request.site is not None and request.app is not None:
        # OpenRTB 2.6 3.2.13: a request "must not contain more than one of" site, app, dooh.
        problem = ("a BidRequest has site or app, not both",)
        return AuctionPlan((), problem, NBR_INVALID_REQUEST, found)
    if request.test:
        return AuctionPlan((), signals=found)
    if request.cur is not None and CURRENCY not in request.cur:
        return AuctionPlan((), (), NBR_UNSUPPORTED_CURRENCY, found)
    country, device_type = _device(request.device)
    user_id, attributes = _user(request, now, privacy.rules(found.privacy, vendor_id=vendor_id))
    slots: list[AuctionSlot] = []
    problems: list[str] = []
    seen: set[str] = set()
    currency_missing = False
    for position, raw in enumerate(request.imp):
        try:
            imp = _decode_imp(raw, position)
            if imp.id in seen:
                raise ValidationFailed(f"imp[{position}].id: imp ids must be unique")
            seen.add(imp.id)
            placement = _placement(request, imp, position)
            floor = _floor(imp, position)
        except ValidationFailed as exc:
            problems.append(str(exc))
            continue
        size = None if imp.banner is None else _size(imp.banner)
        if floor is None:
            currency_missing = True
        if size is None or floor is None:
            continue
        ours = BidRequest(
            user_id=user_id,
            placement_id=placement,
            country_code=country,
            device_type=device_type,
            user_attributes=attributes,
            floor_micros=floor,
        )
        slots.append(AuctionSlot(imp.id, ours, *size))
    if len(problems) == len(request.imp):
        raise ValidationFailed("; ".join(problems[:5]), ["imp"])
    reason = NBR_UNSUPPORTED_CURRENCY if currency_missing else None
    return AuctionPlan(tuple(slots), tuple(problems), reason, found)


def signals(request: OpenRtbRequest) -> Signals:
    """The request's signals from their 2.6 places, else their 2.5 ``ext`` places (`Signals`)."""
    regs, user = request.regs or Regs(), request.user or User()
    source, device = request.source or Source(), request.device or Device()
    # An ext of another shape than ours is ignored, as the specification asks, except the
    # regulations': one we cannot read is taken as GDPR applying without consent.
    regs_ext = _ext(regs.ext, RegsExt, RegsExt(gdpr=1))
    user_ext = _ext(user.ext, UserExt, UserExt())
    gdpr = _first(regs.gdpr, regs_ext.gdpr)
    found = privacy.Signals(
        gdpr=None if gdpr is None else gdpr == 1,
        consent=_first(user.consent, user_ext.consent),
        us_privacy=_first(regs.us_privacy, regs_ext.us_privacy),
        gpp=_first(regs.gpp, regs_ext.gpp),
        gpp_sid=tuple(_first(regs.gpp_sid, regs_ext.gpp_sid) or ()),
        coppa=regs.coppa == 1,
        lmt=device.lmt == 1,
        dnt=device.dnt == 1,
    )
    return Signals(
        privacy=found,
        schain=_first(source.schain, _ext(source.ext, SourceExt, SourceExt()).schain),
        eids=tuple(_first(user.eids, user_ext.eids) or ()),
    )


def _ext(raw: msgspec.Raw, shape: type[_T], unreadable: _T) -> _T:
    if bytes(raw).strip() in (b"", b"null"):
        return shape()
    try:
        return msgspec.json.decode(raw, type=shape)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return unreadable


def _first(newer: _T | None, older: _T | None) -> _T | None:
    return newer if newer is not None else older


def floor_micros(cpm: float) -> Micros:
    """A CPM floor in micros, rounded UP: a bid at the result is never below the floor.

    The float is read through its shortest repr, the decimal text the JSON held, so no binary
    rounding creeps in.

    >>> floor_micros(1.25), floor_micros(0.0000001)
    (1250000, 1)
    """
    micros = math.ceil(Decimal(repr(cpm)).scaleb(6))
    if micros > MAX_MICROS:
        raise ValidationFailed("imp.bidfloor is above any CPM we accept", ["imp.bidfloor"])
    return micros


def bid_response(request: OpenRtbRequest, bids: list[OpenRtbBid], seat: str) -> dict[str, object]:
    """The BidResponse body (OpenRTB 2.6 section 4) for `bids`, which must not be empty."""
    return {
        "id": request.id,
        "bidid": bids[0].bid_id,
        "cur": CURRENCY,
        "seatbid": [{"seat": seat, "bid": [_bid(bid) for bid in bids]}],
    }


def no_bid_response(request_id: str, reason: int) -> dict[str, object]:
    """An empty BidResponse that says why (``nbr``, OpenRTB 2.6 section 5.24)."""
    return {"id": request_id, "nbr": reason}


def auction_price_micros(text: str | None, *, cpm_micros: Micros) -> Micros:
    """The clearing price a notice reports (CPM text, USD), in micros rounded down.

    The exchange substitutes ``${AUCTION_PRICE}`` with the price it clears at. A notice whose
    price is missing or still the macro (Prebid Server never substitutes it) is never refused:
    it settles at our bid, `cpm_micros`. A price that is not plain decimal text (an encrypted
    price) or above our bid (which a second-price exchange can never exceed) is a 400.

    >>> auction_price_micros("1.2345678", cpm_micros=2_000_000)
    1234567
    >>> auction_price_micros("${AUCTION_PRICE}", cpm_micros=2_000_000)
    2000000
    """
    if text is None or text == AUCTION_PRICE_MACRO:
        return cpm_micros
    if not _PRICE_TEXT.fullmatch(text):
        raise ValidationFailed("price: must be a plain decimal CPM such as 1.25", ["price"])
    micros = math.floor(Decimal(text).scaleb(6))
    if micros > cpm_micros:
        raise ValidationFailed(
            f"price: {text} is above our bid of {to_json_number(cpm_micros)}", ["price"]
        )
    return micros


def _bid(bid: OpenRtbBid) -> dict[str, object]:
    body = {
        "id": bid.bid_id,
        "impid": bid.imp_id,
        "price": to_json_number(bid.cpm_micros),
        "adid": bid.ad_id,
        "nurl": bid.nurl,
        "burl": bid.burl,
        "adm": bid.adm,
        "adomain": [urlsplit(bid.redirect_url).hostname or ""],
        "cid": bid.campaign_id,
        "crid": bid.ad_id,
        "mtype": MTYPE_BANNER,
    }
    if bid.lurl:
        body["lurl"] = bid.lurl
    if bid.w is not None and bid.h is not None:
        body["w"], body["h"] = bid.w, bid.h
    return body


def _decode_imp(raw: msgspec.Raw, position: int) -> Imp:
    try:
        return _IMP_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        # msgspec names the field from the imp's own root: `$.id` becomes `$.imp[0].id`.
        where = _MSGSPEC_ROOT.sub(f"`$.imp[{position}]", str(exc))
        raise ValidationFailed(f"imp[{position}]: {where}") from exc
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValidationFailed(f"imp[{position}] is not a valid impression") from exc


def _floor(imp: Imp, position: int) -> Micros | None:
    """The imp's floor in USD micros; None when its currency is not in our table."""
    micros = usd_floor_micros(Decimal(repr(imp.bidfloor)), imp.bidfloorcur)
    if micros is not None and micros > MAX_MICROS:
        raise ValidationFailed(f"imp[{position}].bidfloor is above any CPM we accept")
    return micros


def _device(device: Device | None) -> tuple[str | None, DeviceType | None]:
    if device is None:
        return None, None
    country = None
    if device.geo is not None and device.geo.country is not None:
        # Lenient: an alpha-2 code some exchanges send is taken as such; any other unknown code
        # is no country (only campaigns without a country rule match), not an error.
        code = device.geo.country.upper()
        country = ALPHA3_TO_ALPHA2.get(code) or (code if code in _ALPHA2 else None)
    device_type = (
        None if device.devicetype is None else DEVICE_TYPES_BY_ADCOM.get(device.devicetype)
    )
    return country, device_type


def _user(
    request: OpenRtbRequest, now: datetime, allowed: privacy.Allowed
) -> tuple[str, UserAttributes]:
    user = request.user or User()
    user_id = _user_id(user.id) or _user_id(user.buyeruid)
    if user_id is None or not allowed.store_user:
        user_id = privacy.anonymous_user_id(request.id)
    if not allowed.personalize:
        return user_id, UserAttributes()
    age = None
    if user.yob is not None:
        age = now.year - user.yob
        if not 0 <= age <= MAX_REQUEST_AGE:
            raise ValidationFailed(
                f"user.yob must be a year between {now.year - MAX_REQUEST_AGE} and {now.year}",
                ["user.yob"],
            )
    return user_id, UserAttributes(age=age, interests=_interests(user))


def _user_id(raw: str | None) -> str | None:
    """The id as our models hold it: a long or unprintable one is replaced by its SHA-256."""
    if not raw:
        return None
    if len(raw) <= _MAX_ID and _ID_PATTERN.match(raw):
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _interests(user: User) -> tuple[str, ...]:
    words = user.kwarray if user.kwarray is not None else (user.keywords or "").split(",")
    # Lenient on purpose: a keyword our targeting cannot hold is skipped, not an error.
    kept = [w.strip() for w in words if 0 < len(w.strip()) <= 64 and w.strip().isprintable()]
    return tuple(dict.fromkeys(kept))[:MAX_LIST_ITEMS]


def _placement(request: OpenRtbRequest, imp: Imp, position: int) -> str:
    """Our placement id: the first usable of ``imp.tagid``, ``site.id``/``app.id``, then the
    inventory's own name: ``site.domain``, the host of ``site.page``, ``app.bundle``.

    Prebid Server's requests often carry only a page or a domain. Deriving the placement from it
    (rather than bidding untargeted) keeps a campaign that targets placements off inventory it
    never chose, lets a floor be set per domain or app, and still lets every campaign without a
    placement rule bid. A request that names no inventory at all bids untargeted by placement,
    as `UNKNOWN_PLACEMENT`, which no placement rule matches unless someone targets it.
    """
    site, app = request.site, request.app
    page_host = urlsplit(site.page).hostname if site is not None and site.page else None
    for candidate in (
        imp.tagid,
        site.id if site is not None else None,
        app.id if app is not None else None,
        site.domain if site is not None else None,
        page_host,
        app.bundle if app is not None else None,
    ):
        if candidate and len(candidate) <= _MAX_ID and _ID_PATTERN.match(candidate):
            return candidate
    return UNKNOWN_PLACEMENT


def _size(banner: Banner) -> tuple[int, int] | None:
    """The first non-zero size of ``format``, else ``w``/``h``; None: no size, so no bid."""
    sizes = [(size.w, size.h) for size in banner.format or ()] + [(banner.w, banner.h)]
    for w, h in sizes:
        if w and h:
            return w, h
    return None


def inflate(body: bytes, content_encoding: str) -> bytes:
    """The BidRequest's bytes from a body sent with `content_encoding` (``gzip`` or none).

    Decompressed at most `MAX_OPENRTB_REQUEST_BYTES` (and one byte more to know): a larger
    request is a `PayloadTooLarge` (413) however small it was compressed; a broken gzip
    stream a 400.
    """
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ValidationFailed(
            f"Content-Encoding {encoding[:20]!r} is not supported (gzip is)", ["Content-Encoding"]
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_OPENRTB_REQUEST_BYTES + 1)
    except zlib.error as exc:
        raise ValidationFailed(f"the gzip body is broken: {exc}", ["Content-Encoding"]) from exc
    if len(out) > MAX_OPENRTB_REQUEST_BYTES:
        raise PayloadTooLarge(
            f"the BidRequest is larger than {MAX_OPENRTB_REQUEST_BYTES} bytes once decompressed"
        )
    if not inflater.eof:
        raise ValidationFailed("the gzip body is truncated", ["Content-Encoding"])
    return out
