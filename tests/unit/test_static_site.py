"""The console's static site: the page and hashed assets with strict headers, from a built dist/."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared_layer.console.static_site import CONTENT_SECURITY_POLICY, StaticSite, StaticSiteMissing

CONSOLE = Path(__file__).resolve().parents[2] / "functions" / "console" / "handler.py"


@pytest.fixture
def site(tmp_path: Path) -> StaticSite:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script type="module" src="/a/main-X1.js"></script>')
    (tmp_path / "assets" / "main-X1.js").write_text("console.log(1)")
    (tmp_path / "assets" / "main-X1.css").write_text("body{}")
    (tmp_path / "assets" / "notes.bin").write_bytes(b"\0")  # not a served type
    return StaticSite.load(tmp_path)


def handler(site: StaticSite):
    """The console function's own handler, built over `site`."""
    spec = importlib.util.spec_from_file_location("console_handler_under_test", CONSOLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(site=site)


def get(handle, path: str, **headers: str) -> dict:
    event = SimpleNamespace(method="GET", path=path, body=b"", headers=headers, query={})
    return handle(event, None)


def test_the_page_is_revalidated_and_assets_are_immutable(site):
    handle = handler(site)
    page = get(handle, "/")
    assert page["statusCode"] == 200 and page["body"].startswith(b"<script")
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert page["headers"]["Cache-Control"] == "no-cache"
    asset = get(handle, "/assets/main-X1.js")
    assert asset["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
    assert asset["headers"]["Cache-Control"] == "public, max-age=31536000, immutable"
    css = get(handle, "/assets/main-X1.css")
    assert css["headers"]["Content-Type"] == "text/css; charset=utf-8"
    for response in (page, asset, css):
        assert response["headers"]["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"


def test_the_policy_allows_nothing_inline_and_nothing_elsewhere():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


def test_an_unchanged_file_is_a_304(site):
    handle = handler(site)
    etag = get(handle, "/assets/main-X1.js")["headers"]["ETag"]
    again = get(handle, "/assets/main-X1.js", **{"If-None-Match": etag})
    assert again["statusCode"] == 304 and again["body"] == b""


@pytest.mark.parametrize("path", ["/assets/nope.js", "/assets/notes.bin", "/assets/..", "/x"])
def test_anything_else_is_a_404_with_the_error_body(site, path):
    response = get(handler(site), path)
    assert response["statusCode"] == 404
    assert '"error":"NOT_FOUND"' in response["body"] and "requestId" in response["body"]


def test_a_missing_bundle_says_how_it_is_made(tmp_path):
    with pytest.raises(StaticSiteMissing, match="npm ci && npm run build"):
        StaticSite.load(tmp_path)
