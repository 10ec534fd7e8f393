"""The health port: GET /healthz and GET /metrics (Prometheus text format).

/healthz answers 200 when the consumer loop has polled Kafka or finished an invocation attempt
within `stale_after_s`, and both the gateway (discovery) and Kafka (the lag monitor's admin
requests) answered within `reach_stale_after_s`; otherwise 503. The body is JSON saying which
check failed, plus the process id and how many times the supervisor restarted the connector.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: dict

    @classmethod
    def judge(
        cls,
        now: float,
        last_progress: float | None,
        gateway_reached: float | None,
        kafka_reached: float | None,
        stale_after_s: float,
        reach_stale_after_s: float,
        **extra: object,
    ) -> HealthReport:
        """Pure: the verdict from the timestamps (time.monotonic() values)."""

        def recent(at: float | None, window: float) -> bool:
            return at is not None and now - at <= window

        polling = recent(last_progress, stale_after_s)
        gateway = recent(gateway_reached, reach_stale_after_s)
        kafka = recent(kafka_reached, reach_stale_after_s)
        healthy = polling and gateway and kafka
        detail = {
            "status": "ok" if healthy else "unhealthy",
            "consumer": "ok" if polling else "no poll or invocation recently",
            "gateway": "ok" if gateway else "not reached recently",
            "kafka": "ok" if kafka else "not reached recently",
            "sinceProgressS": None if last_progress is None else round(now - last_progress, 3),
            "sinceGatewayS": None if gateway_reached is None else round(now - gateway_reached, 3),
            **extra,
        }
        return cls(healthy, detail)


class HealthServer:
    def __init__(self, host: str, port: int, report: Callable[[], HealthReport]) -> None:
        handler = _handler(report)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="health", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(report: Callable[[], HealthReport]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                r = report()
                body = json.dumps({**r.detail, "pid": os.getpid()}).encode()
                self._send(200 if r.healthy else 503, body, "application/json")
            else:
                self._send(404, b'{"error":"NOT_FOUND"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scraped every few seconds: not worth a log line

    return Handler
