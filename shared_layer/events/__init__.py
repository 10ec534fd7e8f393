"""The Kafka side of the event pipeline: the outbox relay and the pipeline's progress.

Events are recorded in Redis with what they record (`stores.outbox`); `outbox_relay` delivers
them to Kafka with the idempotent producer, and `pipeline_progress` tells from the connector's
consumer group whether every impression in Kafka has been counted in PostgreSQL.
"""

__all__ = ["outbox_relay", "pipeline_progress"]
