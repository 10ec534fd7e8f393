"""Routing on the raw path, OPTIONS and 405 in every function, through the gateway and at the
provider's invocation address (a function's own address, as a Kubernetes Service is).

Requests are sent with http.client, byte for byte: an HTTP library would normalise "%2e%2e" or
"/../" before sending. The OpenFaaS CE gateway decodes the path before it forwards it (its
forwarding proxy rebuilds the upstream URL from the decoded path), so an encoded "#" reaches
the function cut short; that case is proven at the provider's address, where the path arrives
exactly as sent.
"""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import unquote, urlsplit

import pytest

from localplatform import secrets


def send(base: str, method: str, raw_path: str, body: bytes = b"", token: str = "") -> tuple:
    address = urlsplit(base)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, raw_path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["gateway", "provider"])
def base(request, platform) -> str:
    if request.param == "gateway":
        return platform.gateway
    return f"http://{platform.profile.bridge_ip}:{platform.profile.ports.provider_invoke}"


@pytest.fixture(scope="module")
def token(platform) -> str:
    return secrets.read(platform.profile, "campaigns-admin-token")


def campaign_body(advertiser: str) -> bytes:
    return json.dumps(
        {
            "advertiserId": advertiser,
            "name": "raw path",
            "cpmBid": 1,
            "dailyBudget": 10,
            "lifetimeBudget": 100,
            "targetingRules": [{"ruleType": "placement", "ruleValue": f"raw-{advertiser}"}],
            "ads": [
                {
                    "title": "t",
                    "imageUrl": "https://cdn.example.com/a.jpg",
                    "redirectUrl": "https://example.com/",
                }
            ],
        }
    ).encode()


def assert_error_body(status: int, body: bytes, expected: int) -> None:
    assert status == expected, (status, body[:300])
    assert set(json.loads(body)) == {"error", "message", "requestId"}


@pytest.mark.parametrize(
    "raw_path",
    [
        "/function/campaigns/a%2Fb/resume",  # an encoded "/" never splits an id
        "/function/campaigns/%2e%2e/resume",  # nor does ".." climb to another route
        "/function/campaigns/%2E%2E",
        "/function/analytics/campaign/a%2F..%2F..",
        "/function/console/assets/%2e%2e",
    ],
)
def test_encoded_separators_in_an_id_are_404_never_another_route(base, token, raw_path):
    """At the gateway, a decoded ".." is answered by the gateway itself (a 301 to the cleaned
    path, which no function sees); everywhere else it is our 404."""
    advertiser = str(uuid.uuid4())
    for method, body in (("POST", campaign_body(advertiser)), ("GET", b"")):
        status, _, answer = send(base, method, raw_path, body, token)
        if status == 301 and base.endswith(":8080") and ".." in unquote(raw_path):
            continue
        assert_error_body(status, answer, 404)


def test_an_encoded_hash_in_an_id_creates_nothing(platform, token):
    base = f"http://{platform.profile.bridge_ip}:{platform.profile.ports.provider_invoke}"
    advertiser = str(uuid.uuid4())
    status, _, body = send(
        base, "POST", "/function/campaigns/%23/resume", campaign_body(advertiser), token
    )
    assert_error_body(status, body, 404)
    status, _, body = send(
        base, "GET", f"/function/campaigns?advertiserId={advertiser}", token=token
    )
    assert status == 200 and json.loads(body)["items"] == []


@pytest.mark.parametrize(
    ("raw_path", "allow"),
    [
        ("/function/campaigns", "GET, HEAD, OPTIONS, POST"),
        ("/function/campaigns/bulk", "OPTIONS, POST"),
        ("/function/analytics/campaign/1", "GET, HEAD, OPTIONS"),
        ("/function/serve", "GET, HEAD, OPTIONS, POST"),  # POST: several slots
        ("/function/click", "GET, HEAD, OPTIONS, POST"),
        ("/function/console/", "GET, HEAD, OPTIONS"),
        ("/function/export/run", "OPTIONS, POST"),
    ],
)
def test_options_and_undeclared_methods_answer_what_the_path_allows(base, raw_path, allow):
    status, headers, _ = send(base, "OPTIONS", raw_path)
    assert (status, headers.get("Allow")) == (204, allow)
    undeclared = "PUT" if "PUT" not in allow else "PATCH"
    status, headers, body = send(base, undeclared, raw_path, b"{}")
    assert_error_body(status, body, 405)
    assert headers.get("Allow") == allow
    status, headers, body = send(base, "TRACE", raw_path)
    assert status == 405 and headers.get("Allow") == allow
    status, _, body = send(base, "OPTIONS", raw_path.rstrip("/") + "/nowhere/at/all")
    assert_error_body(status, body, 404)
