"""OpenRTB 2.6: a bid request from an exchange, our bid, and its win and billing notices.

`domain`: decoding, the mapping to our targeting and the notice token (pure). `store`: the notices
seen in Redis. `service`: the exchange's use case over the bidder.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
