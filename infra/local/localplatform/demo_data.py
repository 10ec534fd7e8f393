"""Demo campaigns for a new platform: `make seed`, and `make up` on an empty database.

A realistic, deterministic set (same seed, same campaigns, same ids): advertisers with a few
campaigns each, mostly active and some paused, CPMs from 0.50 to 12.00, budgets large enough
that ads show at once, one to three ads each, and mixed targeting: a quarter untargeted (so any
request fills), the rest restricted by some of country (US, GB, DE, FR, IN, BR, ...), device,
interests, age ranges and placements `placement-001`...`placement-020`.

Loaded THROUGH the campaigns API's bulk endpoint (1,000 per request, each all or nothing), so
the Redis cache and every bid replica learn of them like of any other change.

Example::

    python -m localplatform --profile dev seed --count 500
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from . import secrets
from .components.postgres import connect
from .profile import Profile

DEFAULT_COUNT = 300
DEFAULT_SEED = 20251129
BULK_LIMIT = 1_000
CAMPAIGNS_PER_ADVERTISER = (1, 6)
PLACEMENTS = [f"placement-{n:03d}" for n in range(1, 21)]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "ES", "IT", "JP", "MX"]
DEVICES = ["mobile", "desktop", "tablet", "ctv"]
INTERESTS = [
    "tech", "gaming", "sports", "travel", "fashion", "food", "finance", "music", "movies",
    "fitness", "automotive", "home", "books", "outdoors", "pets", "beauty",
]  # fmt: skip
AGE_RANGES = ["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65-120", "18-34", "25-54"]
BRANDS = [
    "Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
    "Vandelay", "Wonka", "Soylent", "Tyrell", "Cyberdyne", "Gringotts", "Monarch", "Oceanic",
    "Pied Piper", "Massive Dynamic", "Aperture",
]  # fmt: skip
PRODUCTS = [
    "Running Shoes", "Smartphone", "Headphones", "City Break", "Coffee Beans", "Credit Card",
    "Streaming Plan", "Gym Membership", "Electric Car", "Sofa", "Novel", "Tent", "Dog Food",
    "Skin Care", "Game Console", "Laptop", "Sunglasses", "Cooking Class", "Concert Tickets",
]  # fmt: skip


def generate(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """`count` campaigns as the campaigns API takes them (JSON-ready), the same for a seed."""
    rng = random.Random(seed)
    campaigns: list[dict[str, Any]] = []
    while len(campaigns) < count:
        advertiser = _uuid(rng)
        brand = rng.choice(BRANDS)
        domain = brand.lower().replace(" ", "") + ".example"
        for _ in range(rng.randint(*CAMPAIGNS_PER_ADVERTISER)):
            if len(campaigns) == count:
                break
            campaigns.append(_campaign(rng, advertiser, brand, domain))
    return campaigns


def _campaign(rng: random.Random, advertiser: str, brand: str, domain: str) -> dict[str, Any]:
    campaign_id = _uuid(rng)
    product = rng.choice(PRODUCTS)
    cpm = Decimal(rng.randint(50, 1200)).scaleb(-2)  # 0.50 .. 12.00
    daily = Decimal(rng.choice([500, 1_000, 2_000, 5_000, 10_000]))
    lifetime = None if rng.random() < 0.4 else daily * rng.randint(10, 60)
    return {
        "id": campaign_id,
        "advertiserId": advertiser,
        "name": f"{brand} {product} {rng.choice(['Spring', 'Summer', 'Autumn', 'Winter'])}",
        "status": "paused" if rng.random() < 0.15 else "active",
        "cpmBid": cpm,
        "dailyBudget": daily,
        "lifetimeBudget": lifetime,
        "targetingRules": _targeting(rng),
        "ads": [
            {
                "id": _uuid(rng),
                "title": f"{brand} {product}" + ("" if n == 0 else f" #{n + 1}"),
                "imageUrl": f"https://cdn.example.com/ads/{campaign_id}/{n + 1}.jpg",
                "redirectUrl": f"https://{domain}/offer?utm_source=ads&utm_campaign={campaign_id}",
            }
            for n in range(rng.randint(1, 3))
        ],
    }


def _targeting(rng: random.Random) -> list[dict[str, str]]:
    if rng.random() < 0.25:
        return []  # untargeted: bids everywhere
    choices = {
        "country": (0.6, COUNTRIES, 3),
        "device_type": (0.35, DEVICES, 2),
        "interest": (0.35, INTERESTS, 3),
        "age_range": (0.25, AGE_RANGES, 2),
        "placement": (0.3, PLACEMENTS, 3),
    }
    rules = []
    for rule_type, (probability, values, most) in choices.items():
        if rng.random() < probability:
            for value in sorted(rng.sample(values, rng.randint(1, most))):
                rules.append({"ruleType": rule_type, "ruleValue": value})
    return rules


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _json_ready(campaign: dict[str, Any]) -> dict[str, Any]:
    # Decimal money as JSON numbers with its exact digits (the API reads them exactly).
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in campaign.items()}


def load(profile: Profile, campaigns: list[dict[str, Any]], *, timeout_s: float = 120.0) -> int:
    """POST the campaigns to the campaigns API's bulk endpoint; returns how many were created."""
    token = secrets.read(profile, "campaigns-admin-token")
    url = f"{profile.gateway_url}/function/campaigns/bulk"
    created = 0
    for start in range(0, len(campaigns), BULK_LIMIT):
        chunk = [_json_ready(c) for c in campaigns[start : start + BULK_LIMIT]]
        r = requests.post(
            url,
            json={"campaigns": chunk},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
        if r.status_code == 409:
            raise SystemExit(
                "FAILED: these demo campaigns exist already (same seed, same ids); "
                "pass another --seed for another set"
            )
        if r.status_code != 201:
            raise SystemExit(f"FAILED: seeding demo campaigns: {r.status_code} {r.text[:500]}")
        created += int(r.json()["imported"])
    return created


def campaign_count(profile: Profile) -> int:
    conn = connect(profile)
    try:
        return int(conn.run("SELECT count(*) FROM campaigns")[0][0])
    finally:
        conn.close()


def seed(
    profile: Profile,
    count: int = DEFAULT_COUNT,
    *,
    seed: int = DEFAULT_SEED,
    only_if_empty: bool = False,
) -> int:
    """Load `count` demo campaigns; with `only_if_empty`, only into an empty campaigns table."""
    if only_if_empty and campaign_count(profile) > 0:
        return 0
    return load(profile, generate(count, seed))


DEMO_KEYS = ("demo-admin-key", "demo-advertiser-key")


def ensure_demo_keys(profile: Profile, seed: int = DEFAULT_SEED) -> tuple[Path, Path]:
    """An admin key and a key of the first demo advertiser (registered as an account), each in
    a file of the profile's secrets directory; made again only when its file is missing or
    the key no longer works (a database made anew)."""
    admin_file, advertiser_file = (profile.secrets_dir / name for name in DEMO_KEYS)
    first = generate(1, seed)[0]
    if not _works(profile, admin_file):
        _write_key(admin_file, _post(profile, "/keys", {"role": "admin", "label": "demo admin"}))
    if not _works(profile, advertiser_file):
        advertiser = first["advertiserId"]
        brand = first["name"].split(" ")[0]
        r = _call(profile, "POST", "/advertisers", {"id": advertiser, "name": f"{brand} (demo)"})
        if r.status_code not in (201, 409):  # 409: registered by an earlier run
            raise SystemExit(f"FAILED: demo advertiser: {r.status_code} {r.text[:300]}")
        body = {"role": "advertiser", "advertiserId": advertiser, "label": "demo advertiser"}
        _write_key(advertiser_file, _post(profile, "/keys", body))
    return admin_file, advertiser_file


def _call(profile: Profile, method: str, path: str, body: Any = None) -> requests.Response:
    token = secrets.read(profile, "campaigns-admin-token")
    return requests.request(
        method,
        f"{profile.gateway_url}/function/campaigns{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _post(profile: Profile, path: str, body: dict[str, Any]) -> str:
    r = _call(profile, "POST", path, body)
    if r.status_code != 201:
        raise SystemExit(f"FAILED: demo key: {r.status_code} {r.text[:300]}")
    return str(r.json()["key"])


def _works(profile: Profile, path: Path) -> bool:
    if not path.exists():
        return False
    r = requests.get(
        f"{profile.gateway_url}/function/campaigns/me",
        headers={"Authorization": f"Bearer {path.read_text().strip()}"},
        timeout=30,
    )
    return r.status_code == 200


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
