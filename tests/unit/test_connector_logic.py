"""The connector's pure parts: settings, discovery parsing, the retry schedule, health, lag."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "connector"))
from kafka_connector.delivery import max_poll_interval_ms
from kafka_connector.discovery import Subscriber, parse_subscriptions
from kafka_connector.health import HealthReport
from kafka_connector.invoker import Attempt, Invoker, retry_schedule
from kafka_connector.lag import lag_of
from kafka_connector.settings import Settings, SettingsError
from kafka_connector.supervise import next_backoff
from kafka_connector.window import BatchWindow

CONSUMED = ("impressions", "clicks")


# -- discovery --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"topic": "impressions"}, {"impressions": (Subscriber("fn"),)}),
        (
            {"topic": " impressions ,clicks,"},
            {"impressions": (Subscriber("fn"),), "clicks": (Subscriber("fn"),)},
        ),
        (
            {"topic": "clicks", "com.openfaas.kafka.batch": "true"},
            {"clicks": (Subscriber("fn", True),)},
        ),
        (
            {"topic": "clicks", "com.openfaas.kafka.batch": "TRUE"},
            {"clicks": (Subscriber("fn", True),)},
        ),
        ({"topic": "clicks", "com.openfaas.kafka.batch": "no"}, {"clicks": (Subscriber("fn"),)}),
        ({"topic": "other-topic"}, {}),
        ({"topic": "impression"}, {}),  # exact match only, as in connector-sdk
        ({"topic": "IMPRESSIONS"}, {}),
        ({"topic": ""}, {}),
        ({}, {}),
        (None, {}),
    ],
)
def test_the_topic_annotation_subscribes_a_function(annotations, expected):
    subs = parse_subscriptions([{"name": "fn", "annotations": annotations}], CONSUMED)
    assert subs.by_topic == expected


def test_several_functions_on_one_topic_are_sorted_and_bad_entries_ignored():
    listing = [
        {"name": "zeta", "annotations": {"topic": "clicks"}},
        {"name": "alpha", "annotations": {"topic": "clicks,impressions"}},
        {"name": "", "annotations": {"topic": "clicks"}},
        {"annotations": {"topic": "clicks"}},
        {"name": "weird", "annotations": ["topic", "clicks"]},
        "not a function",
    ]
    subs = parse_subscriptions(listing, CONSUMED)
    assert subs.for_topic("clicks") == (Subscriber("alpha"), Subscriber("zeta"))
    assert subs.for_topic("impressions") == (Subscriber("alpha"),)
    assert subs.for_topic("events-dlq") == ()


# -- retries ----------------------------------------------------------------------------
def test_the_retry_schedule_is_the_seeds_backoff():
    settings = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false"})
    assert retry_schedule(settings.retry_delays_s) == [0.0, 0.1, 0.2, 0.4, 0.8, 1.6]


class ScriptedInvoker(Invoker):
    """Invoker.deliver with call() answering from a script (no HTTP)."""

    def __init__(self, answers: list[bool], delays: tuple[float, ...], stop: threading.Event):
        super().__init__("http://127.0.0.1:9", 1.0, delays, pool_size=1, stop=stop)
        self.answers = answers
        self.calls = 0

    def call(self, function, body, headers):
        self.calls += 1
        ok = self.answers.pop(0)
        return Attempt(ok, 200 if ok else 503, "2xx" if ok else "5xx", "" if ok else "HTTP 503")


def test_a_failing_function_is_tried_six_times_then_given_up():
    inv = ScriptedInvoker([False] * 10, (0.0,) * 5, threading.Event())
    outcome = inv.deliver("fn", b"", {})
    assert (outcome.ok, outcome.abandoned, outcome.attempts, inv.calls) == (False, False, 6, 6)
    assert outcome.last.error == "HTTP 503"


def test_a_success_after_failures_stops_retrying():
    inv = ScriptedInvoker([False, False, True, False], (0.0,) * 5, threading.Event())
    outcome = inv.deliver("fn", b"", {})
    assert (outcome.ok, outcome.attempts, inv.calls) == (True, 3, 3)


def test_a_stop_request_abandons_between_retries():
    stop = threading.Event()
    inv = ScriptedInvoker([False] * 10, (30.0,) * 5, stop)
    threading.Timer(0.1, stop.set).start()
    outcome = inv.deliver("fn", b"", {})
    assert (outcome.ok, outcome.abandoned, inv.calls) == (False, True, 1)


def test_a_connection_error_is_a_failure_not_an_exception():
    inv = Invoker("http://127.0.0.1:9", 0.5, (), pool_size=1, stop=threading.Event())
    attempt = inv.call("fn", b"x", {})
    assert (attempt.ok, attempt.status, attempt.status_class) == (False, None, "error")


# -- settings ---------------------------------------------------------------------------
def test_defaults_suit_the_local_platform(tmp_path):
    (tmp_path / "basic-auth-user").write_text("admin\n")
    (tmp_path / "basic-auth-password").write_text("s3cret\n")
    s = Settings.from_env({"CONNECTOR_SECRETS_DIR": str(tmp_path)})
    assert s.basic_auth == ("admin", "s3cret")
    assert s.topics == ("impressions", "clicks")
    assert s.dlq_topic == "events-dlq"
    assert s.rediscover_interval_s == 30
    assert (s.health_host, s.health_port) == ("127.0.0.1", 8095)
    assert s.retry_delays_s == (0.1, 0.2, 0.4, 0.8, 1.6)
    assert s.hold_statuses == {429, 502, 503, 504}
    assert "s3cret" not in repr(s)


def test_every_problem_is_reported_at_once(tmp_path):
    env = {
        "KAFKA_BROKERS": "no-port",
        "GATEWAY_URL": "ftp://x",
        "CONNECTOR_SECRETS_DIR": str(tmp_path / "missing"),
        "CONNECTOR_TOPICS": "impressions,bad topic",
        "CONNECTOR_DLQ_TOPIC": "impressions",
        "CONNECTOR_BATCH_SIZE": "0",
        "CONNECTOR_BATCH_WAIT_MS": "soon",
        "CONNECTOR_RETRY_DELAYS_MS": "100,-5",
        "CONNECTOR_HOLD_STATUSES": "503,200",
        "CONNECTOR_REDISCOVER_INTERVAL_S": "0",
        "CONNECTOR_HEALTH_PORT": "70000",
        "CONNECTOR_UPSTREAM_TIMEOUT_S": "-1",
        "CONNECTOR_LOG_LEVEL": "CHATTY",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    text = "\n".join(caught.value.problems)
    for name in [
        "KAFKA_BROKERS",
        "GATEWAY_URL",
        "basic-auth-user",
        "basic-auth-password",
        "bad topic",
        "CONNECTOR_DLQ_TOPIC",
        "CONNECTOR_BATCH_SIZE",
        "CONNECTOR_BATCH_WAIT_MS",
        "CONNECTOR_RETRY_DELAYS_MS",
        "CONNECTOR_HOLD_STATUSES",
        "CONNECTOR_REDISCOVER_INTERVAL_S",
        "CONNECTOR_HEALTH_PORT",
        "CONNECTOR_UPSTREAM_TIMEOUT_S",
        "CONNECTOR_LOG_LEVEL",
    ]:
        assert name in text, f"{name} not reported in:\n{text}"
    assert len(caught.value.problems) == 14


def test_retries_can_be_turned_off_and_overridden():
    s = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false", "CONNECTOR_RETRY_DELAYS_MS": ""})
    assert s.retry_delays_s == () and retry_schedule(s.retry_delays_s) == [0.0]
    s = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false", "CONNECTOR_RETRY_DELAYS_MS": "5, 10"})
    assert s.retry_delays_s == (0.005, 0.01)


# -- health, lag, supervisor ------------------------------------------------------------
@pytest.mark.parametrize(
    ("last_progress", "gateway", "kafka", "healthy"),
    [
        (99.0, 95.0, 90.0, True),
        (None, 95.0, 90.0, False),  # never polled
        (50.0, 95.0, 90.0, False),  # stuck
        (99.0, None, 90.0, False),  # gateway never reached
        (99.0, 10.0, 90.0, False),  # gateway not reached lately
        (99.0, 95.0, None, False),  # Kafka never answered
        (99.0, 95.0, 20.0, False),  # Kafka not answering lately
    ],
)
def test_health_needs_polling_and_both_the_gateway_and_kafka(
    last_progress, gateway, kafka, healthy
):
    report = HealthReport.judge(100.0, last_progress, gateway, kafka, 30.0, 60.0)
    assert report.healthy is healthy
    assert report.detail["status"] == ("ok" if healthy else "unhealthy")


@pytest.mark.parametrize(
    ("high", "low", "committed", "lag"),
    [(100, 0, 100, 0), (100, 0, 60, 40), (100, 20, -1001, 80), (100, 50, 10, 50), (0, 0, -1001, 0)],
)
def test_lag_counts_from_the_committed_offset_or_the_low_watermark(high, low, committed, lag):
    assert lag_of(high, low, committed) == lag


def test_supervisor_backoff_doubles_to_a_cap_and_resets_after_a_healthy_run():
    waits, b = [], 0.5
    for _ in range(8):
        b = next_backoff(b, uptime_s=1.0)
        waits.append(b)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert next_backoff(30.0, uptime_s=61.0) == 0.5


def test_the_poll_interval_outlasts_the_longest_cycle():
    default = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false"})
    assert max_poll_interval_ms(default) == 333_100
    short = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false", "CONNECTOR_MAX_CYCLE_S": "1",
                               "CONNECTOR_UPSTREAM_TIMEOUT_S": "1"})  # fmt: skip
    assert max_poll_interval_ms(short) == 300_000  # librdkafka's default is the floor


def test_a_fatal_kafka_error_stops_the_loop_and_other_errors_do_not(monkeypatch):
    """Fenced after a broker restart, a consumer polls forever and gets nothing: a fatal error
    must end the process (its supervisor starts a fresh one); transient ones must not."""
    from confluent_kafka import KafkaError
    from kafka_connector import delivery

    monkeypatch.setattr(delivery, "_fatal_errors", [])
    delivery._log_kafka_error(KafkaError(KafkaError._TRANSPORT, "broker down"))
    delivery.raise_if_fatal()  # transient: the loop goes on
    # As librdkafka hands it over: the code _FATAL, without the fatal flag.
    delivery._log_kafka_error(
        KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer")
    )
    with pytest.raises(delivery.FatalKafkaError, match="fenced"):
        delivery.raise_if_fatal()
    assert delivery.is_fatal(KafkaError(KafkaError.FENCED_INSTANCE_ID, "fenced", fatal=True))
    assert not delivery.is_fatal(KafkaError(KafkaError._TRANSPORT, "broker down"))


def test_the_poll_window_defaults_to_50_then_up_to_250_ms():
    s = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false"})
    assert (s.batch_wait_s, s.batch_wait_max_s) == (0.05, 0.25)
    # A shortest window above 250 ms raises the default longest with it: a fixed window.
    s = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false", "CONNECTOR_BATCH_WAIT_MS": "400"})
    assert (s.batch_wait_s, s.batch_wait_max_s) == (0.4, 0.4)
    s = Settings.from_env({"CONNECTOR_BASIC_AUTH": "false", "CONNECTOR_BATCH_WAIT_MAX_MS": "1000"})
    assert s.batch_wait_max_s == 1.0


def test_a_longest_window_below_the_shortest_is_refused():
    env = {
        "CONNECTOR_BASIC_AUTH": "false",
        "CONNECTOR_BATCH_WAIT_MS": "100",
        "CONNECTOR_BATCH_WAIT_MAX_MS": "50",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    (problem,) = caught.value.problems
    assert problem.startswith("CONNECTOR_BATCH_WAIT_MAX_MS='50': expected 100..60000 ms"), problem


def steady(window: BatchWindow, rate: float, partitions: int = 24, polls: int = 40) -> float:
    """The window after `polls` polls of a steady `rate` records/s, each poll as long as the
    window it was given."""
    for _ in range(polls):
        elapsed = window.seconds
        window.observe(round(rate * elapsed), elapsed, partitions)
    return window.seconds


def test_the_window_stays_shortest_while_a_longer_one_would_not_batch():
    # 24 partitions, 10 ads/s: the longest window would bring 0.1 record per partition.
    assert steady(BatchWindow(0.05, 0.25), rate=10) == 0.05
    # 96/s: exactly one record per partition in 250 ms, where growing starts.
    assert steady(BatchWindow(0.05, 0.25), rate=96) == pytest.approx(0.05, abs=0.002)


def test_the_window_grows_with_the_load_up_to_its_longest():
    windows = [steady(BatchWindow(0.05, 0.25), rate=r) for r in (10, 150, 250, 384, 5_000)]
    assert windows == sorted(windows)
    assert 0.05 < windows[1] < windows[2] < 0.25
    assert windows[3] == pytest.approx(0.25, abs=0.002)  # 4 records per partition: the longest
    assert windows[4] == 0.25


def test_the_window_counts_records_per_assigned_partition():
    # The same 384/s spread over 96 partitions is one per partition: no reason to wait.
    assert steady(BatchWindow(0.05, 0.25), rate=384, partitions=96) == pytest.approx(
        0.05, abs=0.002
    )
    # With nothing assigned yet the window still has a value and does not divide by zero.
    assert BatchWindow(0.05, 0.25).observe(0, 0.05, partitions=0) == 0.05


def test_the_window_shrinks_back_when_the_load_goes():
    window = BatchWindow(0.05, 0.25)
    assert steady(window, rate=5_000) == 0.25
    assert steady(window, rate=0) == 0.05


def test_equal_bounds_give_a_fixed_window():
    assert steady(BatchWindow(0.05, 0.05), rate=5_000) == 0.05
    with pytest.raises(ValueError):
        BatchWindow(0.25, 0.05)
