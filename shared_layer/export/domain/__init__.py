"""export: pure: no driver, no network, no metrics, no web framework."""

__all__ = [
    "log_export",
]
