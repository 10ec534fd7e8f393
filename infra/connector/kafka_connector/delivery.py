"""The consumer loop: read a batch, deliver it to every subscriber, commit, repeat.

One cycle:
1. `consume(num_messages=poll_size)` returns up to CONNECTOR_POLL_SIZE records, at the latest
   when the current window has passed since the previous poll returned: CONNECTOR_BATCH_WAIT_MS
   at a light load, growing with the load up to CONNECTOR_BATCH_WAIT_MAX_MS (window.py). A
   cycle that took longer than the window is followed by a poll that does not wait.
2. They are grouped by partition. For each partition and each function subscribed to its topic
   one job runs on a worker thread: a batch function gets the partition's records as JSON
   arrays of at most CONNECTOR_BATCH_SIZE (`com.openfaas.kafka.batch: "true"`), any other
   function one call per record, in
   offset order. Jobs for different partitions or functions run in parallel; within one job
   order is kept, so each function sees each partition in order.
3. A failed call is retried on the schedule (invoker.py); when that is exhausted the record (or
   the batch) becomes a dead letter (dead_letters.py) and the job moves on.
4. When every job is done, queued dead letters are flushed, then the offsets after the last
   record of each partition are committed synchronously. Nothing is committed for a record
   until every subscribed function acknowledged it with a 2xx or it was dead-lettered.
5. A cycle that outlives CONNECTOR_MAX_CYCLE_S (a slow or failing function) stops starting
   new deliveries; each partition's progress is committed and the partition is sought back
   to its first unfinished record, to be read again in the next cycle. Polls, commits and
   rebalances thus keep happening however slow a function is.

Topics without a subscriber are not skipped: their partitions are paused, the records already
read are held in memory (never committed) and delivered, in order, once a function subscribes.
A rebalance drops held records of revoked partitions; their new owner reads them again from the
committed offset.

On a stop request (SIGTERM) the jobs stop at the next record or retry wait (in-flight calls get
CONNECTOR_SHUTDOWN_GRACE_S), and each partition is committed only as far as every function
acknowledged it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from . import metrics, payloads
from .dead_letters import DeadLetters
from .discovery import Subscriber, Subscriptions
from .invoker import Invoker, Outcome
from .settings import Settings
from .window import BatchWindow

log = logging.getLogger(__name__)

TP = tuple[str, int]


def _offset(msg: Message) -> int:
    """A consumed record's offset (librdkafka leaves it unset only on produced messages)."""
    offset = msg.offset()
    if offset is None:
        raise ValueError("a consumed record without an offset")
    return offset


def _tp(msg: Message) -> TP:
    topic, partition = msg.topic(), msg.partition()
    if topic is None or partition is None:
        raise ValueError("a consumed record without a topic or partition")
    return topic, partition


def consumer_config(settings: Settings) -> dict:
    config = {
        "bootstrap.servers": settings.brokers,
        "group.id": settings.group_id,
        "client.id": settings.connector_name,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        # A cycle lasts at most max_cycle_s plus one delivery that started just before (every
        # attempt timing out, and the backoff); the group must not evict us meanwhile.
        "max.poll.interval.ms": max_poll_interval_ms(settings),
        "error_cb": _log_kafka_error,
        # At a few events a second the broker answered a fetch per event (fetch.min.bytes=1):
        # now it holds a fetch until 256 KiB are there or the shortest poll window
        # (CONNECTOR_BATCH_WAIT_MS, at most librdkafka's default 500 ms) has passed, which a
        # cycle waits for anyway. Not the longest: a light load would then wait for it.
        "fetch.min.bytes": 262_144,
        "fetch.wait.max.ms": min(int(settings.batch_wait_s * 1000), 500),
    }
    if settings.instance_id:
        # Static membership: a restarted process (supervisor) takes its partitions back at
        # once instead of waiting for the dead member's session to time out.
        config["group.instance.id"] = settings.instance_id
    return config


def max_poll_interval_ms(settings: Settings) -> int:
    """Longest time between two polls, with a minute to spare (librdkafka caps it at 24 h);
    with the defaults 60 + 6 x (30 + 5) + 3.1 + 60 s = 333.1 s."""
    attempts = 1 + len(settings.retry_delays_s)
    one_delivery = attempts * (settings.upstream_timeout_s + 5) + sum(settings.retry_delays_s)
    seconds = settings.max_cycle_s + one_delivery + 60
    return min(max(int(seconds * 1000), 300_000), 86_400_000)


class FatalKafkaError(Exception):
    """librdkafka reported a fatal error: this consumer can make no progress any more (for
    example fenced by the group after a broker restart). The process exits and its supervisor
    starts a fresh one, which rejoins the group; nothing unacknowledged was committed."""


_fatal_errors: list[KafkaError] = []


def is_fatal(err: KafkaError) -> bool:
    """librdkafka reports a fatal error as code ``_FATAL`` (the error callback and consumed
    messages carry that code without the fatal flag), or flagged fatal."""
    return err.fatal() or err.code() == KafkaError._FATAL


def _log_kafka_error(err: KafkaError) -> None:
    if is_fatal(err):
        log.error("kafka: fatal: %s", err)
        _fatal_errors.append(err)
    else:
        log.warning("kafka: %s", err)


def raise_if_fatal() -> None:
    """Raise FatalKafkaError once librdkafka reported a fatal error (checked every poll)."""
    if _fatal_errors:
        raise FatalKafkaError(str(_fatal_errors[0]))


class _Bodies:
    """The batch bodies of one cycle, built once per chunk however many batch functions
    subscribe to its partition (building one is most of the connector's work per record)."""

    def __init__(self, connector: str) -> None:
        self._connector = connector
        self._lock = threading.Lock()
        self._built: dict[tuple[TP, int], tuple[bytes, dict[str, str]]] = {}

    def get(self, tp: TP, start: int, chunk: Sequence[Message]) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the chunk of `tp`'s records that begins at index `start`."""
        with self._lock:
            if (tp, start) not in self._built:
                self._built[tp, start] = (
                    payloads.batch_body(chunk),
                    payloads.batch_headers(chunk, self._connector),
                )
            return self._built[tp, start]


@dataclass
class _Job:
    """One function's share of one partition in a cycle; `next_offset` is the first record
    not yet acknowledged or dead-lettered (written by the worker, read by the loop)."""

    tp: TP
    subscriber: Subscriber
    records: Sequence[Message]
    next_offset: int


class DeliveryLoop:
    def __init__(
        self,
        settings: Settings,
        subscriptions: Callable[[], Subscriptions],
        invoker: Invoker,
        dead_letters: DeadLetters,
        stop: threading.Event,
    ) -> None:
        self._s = settings
        self._subscriptions = subscriptions
        self._invoker = invoker
        self._dead_letters = dead_letters
        self._stop = stop
        self._consumer = Consumer(consumer_config(settings))
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="deliver")
        self._window = BatchWindow(settings.batch_wait_s, settings.batch_wait_max_s)
        self._assigned: set[TP] = set()
        self._paused: set[TP] = set()
        self._held: dict[TP, list[Message]] = {}
        self._next_offset: dict[TP, int] = {}  # after the last record handed to jobs
        self.last_poll: float | None = None  # time.monotonic()
        self.last_progress: float | None = None  # a poll or a finished invocation attempt

    # -- what other threads read ----------------------------------------------------------
    def assigned(self) -> set[TP]:
        return set(self._assigned)

    def paused(self) -> set[TP]:
        return set(self._paused)

    def touch(self) -> None:
        self.last_progress = time.monotonic()

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        self._consumer.subscribe(
            list(self._s.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        returned = time.monotonic()  # when the previous poll returned
        while not self._stop.is_set():
            ready = self._reconcile_pauses(self._subscriptions())
            # The window runs from the previous poll's return: records that arrived while the
            # last cycle delivered have waited that long already, so a cycle that outlasts the
            # window is followed at once by the next.
            wait = max(0.0, self._window.seconds - (time.monotonic() - returned))
            messages = self._consumer.consume(self._s.poll_size, wait)
            raise_if_fatal()
            self.last_poll = time.monotonic()
            window = self._window.observe(
                len(messages), self.last_poll - returned, len(self._assigned - self._paused)
            )
            metrics.WINDOW.set(window)
            returned = self.last_poll
            self.last_progress = self.last_poll
            metrics.LAST_POLL.set(time.time())
            if self._stop.is_set():
                break  # read but not delivered: not committed, read again after a restart
            if messages or ready:
                self._cycle(ready, messages)

    def close(self) -> None:
        """Leave the group (a fast rebalance for the others); never commits anything."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the consumer: %s", exc)

    # -- rebalance callbacks (run inside consume()) ---------------------------------------
    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Copy-on-write: the health and lag threads read these sets while we change them.
        self._assigned = self._assigned | {(tp.topic, tp.partition) for tp in partitions}
        metrics.ASSIGNED.set(len(self._assigned))
        log.info("assigned %s", _describe(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned = self._assigned - gone
        self._paused = self._paused - gone
        for key in gone:
            self._held.pop(key, None)
            self._next_offset.pop(key, None)
        metrics.ASSIGNED.set(len(self._assigned))
        self._export_paused()
        log.info("revoked %s", _describe(partitions))

    # -- pausing topics nobody subscribes to ----------------------------------------------
    def _reconcile_pauses(self, subs: Subscriptions) -> dict[TP, list[Message]]:
        """Pause partitions of unsubscribed topics, resume the others; returns held records
        that can now be delivered."""
        to_pause = [tp for tp in self._assigned - self._paused if not subs.for_topic(tp[0])]
        to_resume = [tp for tp in self._paused if subs.for_topic(tp[0])]
        if to_pause:
            self._consumer.pause([TopicPartition(t, p) for t, p in to_pause])
            self._paused = self._paused | set(to_pause)
            log.info("paused %s: no function subscribes", sorted(to_pause))
        ready = {}
        if to_resume:
            self._consumer.resume([TopicPartition(t, p) for t, p in to_resume])
            self._paused = self._paused - set(to_resume)
            log.info("resumed %s: a function subscribes", sorted(to_resume))
            for tp in to_resume:
                if tp in self._held:
                    ready[tp] = self._held.pop(tp)
        if to_pause or to_resume:
            self._export_paused()
        return ready

    def _export_paused(self) -> None:
        for topic in self._s.topics:
            metrics.PAUSED.labels(topic).set(sum(1 for t, _ in self._paused if t == topic))

    # -- one cycle ------------------------------------------------------------------------
    def _cycle(self, ready: dict[TP, list[Message]], messages: list[Message]) -> None:
        by_tp: dict[TP, list[Message]] = {tp: list(held) for tp, held in ready.items()}
        read: dict[str, int] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                if is_fatal(err):
                    raise FatalKafkaError(str(err))
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume: %s", err)
                continue
            tp = _tp(msg)
            if _offset(msg) < self._next_offset.get(tp, -1):
                continue  # already handed to a job (re-fetched after a pause)
            by_tp.setdefault(tp, []).append(msg)
            read[tp[0]] = read.get(tp[0], 0) + 1
        for topic, count in read.items():
            metrics.CONSUMED.labels(topic).inc(count)
        subs = self._subscriptions()
        jobs: list[_Job] = []
        for tp, records in by_tp.items():
            subscribers = subs.for_topic(tp[0])
            if tp not in self._assigned:
                continue  # revoked since it was read
            self._next_offset[tp] = _offset(records[-1]) + 1
            if not subscribers:
                self._held.setdefault(tp, []).extend(records)
                continue
            start = _offset(records[0])
            jobs.extend(_Job(tp, sub, records, start) for sub in subscribers)
        if not jobs:
            self._reconcile_pauses(subs)  # pause what we just held
            return
        deadline = time.monotonic() + self._s.max_cycle_s
        bodies = _Bodies(self._s.connector_name)
        futures = {self._pool.submit(self._run_job, job, deadline, bodies): job for job in jobs}
        self._wait(futures)
        # Where each partition stands: the least progress of its functions. Read before the
        # flush, so every dead letter it counts is among those flushed.
        resume: dict[TP, int] = {}
        for job in jobs:
            resume[job.tp] = min(resume.get(job.tp, job.next_offset), job.next_offset)
        self._dead_letters.flush()  # raises DeadLetterError: then nothing is committed
        self._commit({tp: o for tp, o in resume.items() if o > _offset(by_tp[tp][0])})
        for tp, offset in resume.items():
            if offset <= _offset(by_tp[tp][-1]) and not self._stop.is_set():
                # The cycle ran out of time (a slow or failing function): read the rest again
                # next cycle, so that polls, commits and rebalances keep happening.
                self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
                self._next_offset[tp] = offset
        if self._held:
            self._reconcile_pauses(subs)

    def _wait(self, futures: dict[Future, _Job]) -> None:
        """Wait for every job; on stop, give them the grace period, then leave them."""
        pending = set(futures)
        deadline = None
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for f in done:
                if (error := f.exception()) is not None:
                    raise error  # a bug, not a delivery failure: exit, commit nothing
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + self._s.shutdown_grace_s
                if time.monotonic() >= deadline:
                    return

    def _run_job(self, job: _Job, deadline: float, bodies: _Bodies) -> None:
        """Deliver a partition's records to one function, in order, advancing
        `job.next_offset`; stops early on a stop request or when the cycle's time is up."""
        fn, topic = job.subscriber.name, job.tp[0]
        size = self._s.batch_size if job.subscriber.batch else 1
        for start in range(0, len(job.records), size):
            if start and time.monotonic() > deadline:
                return
            chunk = job.records[start : start + size]
            if job.subscriber.batch:
                body, headers = bodies.get(job.tp, start, chunk)
                metrics.BATCH_RECORDS.labels(fn).observe(len(chunk))
            else:
                body = chunk[0].value() or b""
                headers = payloads.record_headers(
                    chunk[0], self._s.connector_name, self._s.content_type
                )
            outcome = self._invoker.deliver(fn, body, dict(headers))
            if outcome.abandoned:
                return
            if outcome.ok:
                metrics.DELIVERED.labels(fn, topic).inc(len(chunk))
            elif self._unavailable(outcome):
                # Not the records' fault: keep them (nothing is committed past them) and read
                # them again next cycle, whose retries pace the next tries.
                metrics.HELD.labels(fn, topic).inc(len(chunk))
                log.warning(
                    "%s unavailable (%s): %s[%d] held at offset %d",
                    fn, outcome.last.error, topic, job.tp[1], job.next_offset,
                )  # fmt: skip
                return
            else:
                self._dead_letters.add(chunk, fn, outcome, batch=job.subscriber.batch)
            job.next_offset = _offset(chunk[-1]) + 1

    def _unavailable(self, outcome: Outcome) -> bool:
        """The function could not take the records (no answer, or a status meaning "not now"),
        as opposed to refusing them: only a refusal may send records to the dead letters."""
        status = outcome.last.status
        return status is None or status in self._s.hold_statuses

    def _commit(self, offsets: dict[TP, int]) -> None:
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # E.g. a rebalance started meanwhile: the records are delivered again by whoever
            # owns the partition next (at-least-once), never lost.
            metrics.COMMITS.labels("failed").inc()
            log.warning("commit of %s failed: %s", _describe(tps), exc)
            return
        metrics.COMMITS.labels("ok").inc()


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
