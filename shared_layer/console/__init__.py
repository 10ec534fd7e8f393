"""The console: a built web page and its hashed assets, served with a strict
Content-Security-Policy."""

__all__ = [
    "static_site",
]
