"""Where an event becomes a number.

`domain`: the event models and the aggregation arithmetic (pure). `store`: the outbox relay to
Kafka, the pipeline's progress, daily_metrics in PostgreSQL (exact) and the live counters in
Redis (today). `service`: the live counters' rebuild from PostgreSQL.
"""

__all__ = [
    "domain",
    "service",
    "store",
]
