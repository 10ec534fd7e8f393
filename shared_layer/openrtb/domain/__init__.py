"""openrtb: pure: no driver, no network, no metrics, no web framework."""

__all__ = [
    "notice_token",
    "openrtb",
]
