"""console: the advertiser console, a single-page web app, and nothing else.

The page (dist/index.html) and its content-hashed assets are bundled from src/ when the image is
built (build.mjs, esbuild; see README.md) and served from memory with a strict
Content-Security-Policy. The page itself talks to the campaigns and analytics APIs through the
same gateway with the admin token the user signs in with; this function holds no token, reads
no store and keeps no state.
"""

from __future__ import annotations

from pathlib import Path

from shared_layer.console.static_site import StaticSite
from shared_layer.kernel.http import Handler, Request, Router

DIST = Path(__file__).resolve().parent / "dist"


def build(settings: None = None, *, site: StaticSite | None = None) -> Handler:
    """The page and assets of `site` (default: the bundle in dist/, read once, here)."""
    served = site if site is not None else StaticSite.load(DIST)
    router = Router()

    @router.route("GET", "/")
    def page(request: Request) -> dict:
        return served.page(request)

    @router.route("GET", "/assets/{name}")
    def asset(request: Request, name: str) -> dict:
        return served.asset(request, name)

    return router.handler(service="console", access_log=False)
