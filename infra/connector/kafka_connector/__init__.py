"""Our open-source Kafka connector for OpenFaaS: Kafka records in, function invocations out.

It follows the OpenFaaS connector contract (functions subscribe with the `topic` annotation,
are discovered from the gateway and invoked through it) and adds what the ad server needs:
at-least-once delivery (offsets committed only after every subscribed function answered 2xx),
retries with backoff, a dead-letter topic, batches for functions that opt in, Prometheus
metrics and a health endpoint. See infra/connector/README.md.

Run it with `python -m kafka_connector` (one process) or `python -m kafka_connector.supervise`
(a parent that restarts the process if it dies).
"""

from .settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError"]
