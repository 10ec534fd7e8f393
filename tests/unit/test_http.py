"""The shared HTTP edge: ids, trace context, routing by table, error bodies, size limits."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.http import Router, json_response, require_bearer

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def event(method="GET", path="/", body=b"", headers=None, query=None, raw_path=None):
    return SimpleNamespace(
        method=method,
        path=path,
        raw_path=raw_path,
        body=body,
        headers=headers or {},
        query=query or {},
    )


def make_router() -> Router:
    router = Router()

    @router.route("GET", "/items/{item_id}")
    def get_item(request, item_id):
        return json_response(200, {"id": item_id, "q": dict(request.query)}, request)

    @router.route("POST", "/items/{item_id}/resume")
    def resume(request, item_id):
        return json_response(200, {"resumed": item_id}, request)

    @router.route("POST", "/items")
    def create(request):
        payload = request.json()
        if "name" not in payload:
            raise ValidationFailed("name is required", fields=["name"])
        return json_response(201, payload, request)

    @router.route("GET", "/boom")
    def boom(request):
        raise RuntimeError("secret host db-7.internal")

    return router


handle = make_router().handler(service="test")


def body(response):
    return json.loads(response["body"])


def test_routes_by_method_and_template_with_path_parameters():
    r = handle(event(path="/items/abc", query={"x": "1"}), None)
    assert r["statusCode"] == 200 and body(r) == {"id": "abc", "q": {"x": "1"}}
    assert handle(event(path="/items/abc/"), None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/nowhere", 404, "NOT_FOUND"), ("DELETE", "/items/abc", 405, None)],
)
def test_unknown_paths_and_methods_are_4xx_with_the_error_shape(method, path, status, code):
    r = handle(event(method=method, path=path), None)
    assert r["statusCode"] == status
    assert set(body(r)) == {"error", "message", "requestId"}
    if code:
        assert body(r)["error"] == code


def test_a_405_says_which_methods_are_allowed():
    r = handle(event(method="PUT", path="/items"), None)
    assert r["statusCode"] == 405 and r["headers"]["Allow"] == "OPTIONS, POST"
    r = handle(event(method="TRACE", path="/items/abc"), None)
    assert r["statusCode"] == 405 and r["headers"]["Allow"] == "GET, HEAD, OPTIONS"
    assert set(body(r)) == {"error", "message", "requestId"}


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/items", "OPTIONS, POST"), ("/items/abc", "GET, HEAD, OPTIONS")],
)
def test_options_answers_what_the_path_allows(path, allow):
    r = handle(event(method="OPTIONS", path=path), None)
    assert r["statusCode"] == 204 and r["headers"]["Allow"] == allow
    assert handle(event(method="OPTIONS", path="/nowhere"), None)["statusCode"] == 404


def test_head_is_served_as_get():
    assert handle(event(method="HEAD", path="/items/abc"), None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("method", "raw_path", "status"),
    [
        ("POST", "/items/%23/resume", 404),  # "#" would cut the path short: never POST /items
        ("POST", "/items/a%2Fb/resume", 404),  # "/" would split the id
        ("GET", "/items/a%3Fb", 404),
        ("GET", "/items/%00", 404),
        ("GET", "/items/%ff%fe", 404),  # not UTF-8
        ("POST", "/items/%2e%2e/resume", 404),
        ("POST", "/items/../items", 404),  # never POST /items
        ("GET", "/items/./abc", 404),
    ],
)
def test_routing_is_on_the_raw_path_and_encoded_separators_name_nothing(method, raw_path, status):
    from urllib.parse import unquote

    r = handle(event(method=method, path=unquote(raw_path), raw_path=raw_path, body=b"{}"), None)
    assert r["statusCode"] == status, r["body"]
    assert set(body(r)) == {"error", "message", "requestId"}


def test_an_encoded_id_is_decoded_after_matching():
    r = handle(event("POST", "/items/a b/resume", raw_path="/items/a%20b/resume"), None)
    assert r["statusCode"] == 200 and body(r) == {"resumed": "a b"}


def test_bad_json_and_validation_are_400_never_500():
    assert handle(event("POST", "/items", b"{nope"), None)["statusCode"] == 400
    r = handle(event("POST", "/items", b"{}"), None)
    assert r["statusCode"] == 400 and "name" in body(r)["message"]


def test_unexpected_errors_are_500_without_internals():
    r = handle(event(path="/boom"), None)
    assert r["statusCode"] == 500
    assert "db-7" not in r["body"] and body(r)["error"] == "INTERNAL"


def test_oversized_body_is_413():
    small = Router().handler(service="t", max_body_bytes=10)
    r = small(event("POST", "/items", b"x" * 11), None)
    assert r["statusCode"] == 413 and body(r)["requestId"]


def test_request_id_and_trace_id_are_propagated():
    r = handle(
        event(path="/items/a", headers={"X-Request-Id": "req-1", "traceparent": TRACE}), None
    )
    assert r["headers"]["X-Request-Id"] == "req-1"
    out = r["headers"]["traceparent"].split("-")
    assert out[1] == "0af7651916cd43dd8448eb211c80319c" and out[2] != "b7ad6b7169203331"


def test_invalid_ids_are_replaced_not_echoed():
    r = handle(
        event(path="/nowhere", headers={"X-Request-Id": "bad id\n", "traceparent": "x"}), None
    )
    assert body(r)["requestId"] != "bad id\n" and len(body(r)["requestId"]) == 36
    assert len(r["headers"]["traceparent"].split("-")[1]) == 32


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Basic YWRtaW46eA==", 401),
        ("Bearer ", 401),
        ("Bearer wrong-token", 403),
        ("Bearer s3cret-token", 200),
        ("bearer s3cret-token ", 200),
    ],
)
def test_a_bearer_token_is_required_and_checked(authorization, status):
    router = Router()

    @router.route("GET", "/private")
    def private(request):
        require_bearer(request, b"s3cret-token", "test")
        return json_response(200, {}, request)

    headers = {"Authorization": authorization} if authorization else {}
    r = router.handler(service="t")(event(path="/private", headers=headers), None)
    assert r["statusCode"] == status
    if status != 200:
        assert body(r)["error"] in ("UNAUTHORIZED", "FORBIDDEN")
        assert "s3cret" not in r["body"]
