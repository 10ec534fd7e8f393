"""The edge of every function: the HTTP contract, settings and the decisioning metrics.

`bidder_runtime` (what a replica that runs auctions starts: ledger, snapshot, recovery,
relay; bid and openrtb), `http` (request ids, trace context, routing table, JSON and error
bodies), `settings` (typed, frozen settings read once from the environment and secret
files), `metrics` (the Prometheus metrics of the bid, serve and openrtb handlers),
`static_site` (a built web page and its hashed assets, served with a strict
Content-Security-Policy: the console). Handlers import this layer and the
services they run.
"""

__all__ = [
    "bidder_runtime",
    "http",
    "metrics",
    "settings",
    "static_site",
]
