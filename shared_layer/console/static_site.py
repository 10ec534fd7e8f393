"""A built single-page app served as static files: the page, its hashed assets, strict headers.

Why here: a function that serves a web page must answer with the same security headers on every
response (a strict Content-Security-Policy, no sniffing, no referrer, no framing), long caching
for content-hashed assets and none for the page that names them. The bundle is made at image
build time (functions/console/build.mjs); this module only reads it, once, at start-up, so a
request never touches the disk.

The layout it expects (what the build writes)::

    dist/index.html              the page: `Cache-Control: no-cache` (revalidated every time)
    dist/assets/<name>-<hash>.*  scripts, styles: cached for a year, `immutable`

Example::

    site = StaticSite.load(Path(__file__).parent / "dist")
    site.page(request)                 # the index.html response
    site.asset(request, "main-X1.js")  # an asset, or NotFound (404 with the error body)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared_layer.kernel.errors import NotFound
from shared_layer.kernel.http import Request, Response

__all__ = ["CONTENT_SECURITY_POLICY", "StaticSite", "StaticSiteMissing"]

# Everything from our own origin, nothing inline, nothing elsewhere: the API calls go to the
# same gateway (connect-src 'self'); data: only for the empty favicon.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}
_ASSET_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_PAGE_CACHE: Final = "no-cache"
_ASSET_CACHE: Final = "public, max-age=31536000, immutable"


class StaticSiteMissing(RuntimeError):
    """The bundle was not built into the image (the build step did not run)."""


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class StaticSite:
    """The page and its assets, in memory."""

    index: _File
    assets: Mapping[str, _File]

    @classmethod
    def load(cls, root: Path) -> StaticSite:
        """Read `root/index.html` and every file of `root/assets/` (no subfolders)."""
        index = root / "index.html"
        if not index.is_file():
            raise StaticSiteMissing(
                f"{index} is missing: the image build bundles the page (npm ci && npm run build)"
            )
        assets = {
            path.name: _read(path)
            for path in sorted((root / "assets").glob("*"))
            if path.is_file() and path.suffix in _TYPES
        }
        return cls(index=_read(index), assets=assets)

    def page(self, request: Request) -> Response:
        return _respond(self.index, request, _PAGE_CACHE)

    def asset(self, request: Request, name: str) -> Response:
        found = self.assets.get(name) if _ASSET_NAME.match(name) else None
        if found is None:
            raise NotFound(f"no such asset: {name[:100]}")
        return _respond(found, request, _ASSET_CACHE)


def _read(path: Path) -> _File:
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return _File(body=body, content_type=_TYPES.get(path.suffix, "text/plain"), etag=etag)


def _respond(file: _File, request: Request, cache: str) -> Response:
    headers = {
        **_SECURITY_HEADERS,
        "Content-Type": file.content_type,
        "Cache-Control": cache,
        "ETag": file.etag,
        "X-Request-Id": request.request_id,
    }
    if file.etag in request.header("if-none-match"):
        return {"statusCode": 304, "body": b"", "headers": headers}
    return {"statusCode": 200, "body": file.body, "headers": headers}
