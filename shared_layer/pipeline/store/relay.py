"""The outbox relay: events recorded in Redis with their charge or click, delivered to Kafka.

Why: bid charges a budget and click accepts a click in one Lua script each. If the event were
handed to a Kafka producer afterwards, a replica that died in between (or with the event still
in its producer's buffer) would lose a charged impression for good, and PostgreSQL's spend would
disagree with Redis. So the script itself appends the event to the outbox stream of its
campaign's shard (``events::outbox::{shard<k>of<n>}``, `kernel.storage.outbox`); the charge and its
record cannot be separated, and Redis (AOF on) keeps it.

`OutboxRelay`, a thread per shard in each replica of those functions (`start_relay` starts one
for every shard's stream, `OutboxRelays`), drains its stream to Kafka:

1. ``XREADGROUP`` (group ``relay``, one consumer per replica) hands it new entries; each is
   produced with the idempotent producer (acks=all) to the entry's topic, keyed as recorded.
2. When Kafka confirms delivery, the entry is acknowledged and deleted (``XACK`` + ``XDEL``), so
   the stream holds only what is not yet in Kafka.
3. A failed delivery (Kafka down longer than the producer's timeout) is produced again after a
   pause; the entry stays pending in the meantime, and the relay refreshes its claim on it.
   A fatal producer error (librdkafka's idempotent producer gives up when it can no longer
   guarantee order, for example after a broker lost its producer state) would fail every later
   delivery: the relay then replaces its producer and produces what was in flight again.
4. Sweeper: entries pending for longer than `claim_idle_s` belong to a relay that died (its
   replica was killed, scaled down or restarted): any relay takes them over (``XAUTOCLAIM``)
   and produces them.

An entry can therefore reach Kafka twice (a relay died after delivery, before its XACK), never
zero times. Event ids make the second copy harmless: events_log counts an event id once, and
live-counters sets each id seen for its dedupe window.

Fault injection (tests only, `CrashAfterAcks`): with ``OUTBOX_RELAY_KILL_AFTER_ACKS=N`` and
``OUTBOX_RELAY_KILL_TOKENS=<dir>`` in a replica's environment, its relay SIGKILLs its own
process between Kafka's acknowledgement and the XDEL, once it has seen N acknowledgements and
can take (delete) a token file from the directory: one crash per token, whoever takes it.

Entries have three fields: ``topic``, ``key``, ``value`` (the event's JSON bytes); a script
appends one with ``XADD <stream> * topic <t> key <k> value <v>`` (`outbox_fields`).
A relay passes at most once per ``read_every_s`` (50 ms) unless a full batch waits: at a
hundred events a second that is about five events per read instead of one, and an event waits
at most that long before it is produced (Kafka's ``linger.ms`` is 50 ms as well).
Why a relay per shard rather than one XREADGROUP over every stream: on a Redis Cluster the
streams live in different slots (on different masters), and one command may only name keys of
one slot; a relay per stream also keeps one slow master from holding up the others.

Example::

    relays = start_relay(settings.redis_url, settings.kafka_brokers)  # once, in build()
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import redis
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared_layer.kernel.background import Loop
from shared_layer.kernel.correlation import REQUEST_ID_HEADER, TRACEPARENT_HEADER
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.storage.outbox import (
    OUTBOX_GROUP,
    OUTBOX_PREFIX,
    outbox_stream,
    outbox_streams,
)
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, connect, key_layout
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_CLAIMED,
    OUTBOX_DELIVERY_FAILURES,
    OUTBOX_PRODUCER_RESTARTS,
    OUTBOX_RELAYED,
)

__all__ = ["CrashAfterAcks", "OutboxRelay", "OutboxRelays", "kafka_producer", "start_relay"]

_LOGGER = get_logger("outbox")
_WAITING_BLOCK_MS: Final = 20  # how long a read waits while entries wait for Kafka


def kafka_producer(brokers: str, **overrides: Any) -> Producer:
    """The idempotent producer every relay uses (acks=all, ordered per partition).

    ``message.timeout.ms`` bounds how long a message may wait for Kafka before its delivery
    fails and the relay produces it again; it must stay below the sweeper's claim time, so that
    a live relay never loses its entries to another while it still waits for Kafka.
    """
    config = {
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        # One produce request per 50 ms rather than per event at a replica's few events a
        # second (Kafka's CPU per served ad fell by about a third); the connector's batch
        # window is 50 ms too, so an event's way to the aggregates stays well inside 1 s.
        "linger.ms": 50,
        "message.timeout.ms": 15_000,
        "socket.keepalive.enable": True,
        "client.id": f"outbox-{socket.gethostname()}",
        **overrides,
    }
    return Producer(config)


@dataclass
class CrashAfterAcks:
    """The test seam: die like a killed replica between Kafka's ack and the XDEL (see above)."""

    after_acks: int
    tokens: Path
    acks: int = 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> CrashAfterAcks | None:
        """The seam when the test profile's two variables are set, else None (production)."""
        after, tokens = environ.get(_KILL_AFTER_ACKS), environ.get(_KILL_TOKENS)
        if not after or not tokens:
            return None
        return cls(after_acks=int(after), tokens=Path(tokens))

    def acknowledged(self, count: int) -> None:
        self.acks += count
        if self.acks < self.after_acks:
            return
        for token in sorted(self.tokens.glob("*")):
            try:
                token.unlink()
            except FileNotFoundError:  # another replica took it
                continue
            _LOGGER.warning("outbox relay: crashing after Kafka's ack (test fault injection)")
            os.kill(os.getpid(), signal.SIGKILL)
            return


_KILL_AFTER_ACKS = "OUTBOX_RELAY_KILL_AFTER_ACKS"
_KILL_TOKENS = "OUTBOX_RELAY_KILL_TOKENS"


@dataclass
class _Entry:
    entry_id: bytes
    topic: str
    key: bytes | None
    value: bytes
    # the ad's correlation (kernel.correlation), typed as the Kafka client takes record headers
    headers: list[tuple[str, str | bytes | None]] | None = None


@dataclass
class _State:
    in_flight: dict[bytes, _Entry] = field(default_factory=dict)
    delivered: list[tuple[bytes, str]] = field(default_factory=list)
    retry: list[tuple[float, _Entry]] = field(default_factory=list)


class OutboxRelay:
    """Drains the outbox stream to Kafka from one replica (see the module docstring).

    `run_once` is one step of the loop (tests drive it directly); `start` runs it on a daemon
    thread until `stop`. `new_producer` makes the Kafka producer, again after a fatal error.
    """

    def __init__(
        self,
        client: Any,
        new_producer: Callable[[], Producer],
        *,
        stream: str = outbox_stream(SINGLE, 0),
        group: str = OUTBOX_GROUP,
        consumer: str | None = None,
        batch_size: int = 500,
        block_ms: int = 50,
        read_every_s: float = 0.05,
        claim_idle_s: float = 30.0,
        claim_every_s: float = 2.0,
        retry_after_s: float = 1.0,
        stuck_after_s: float = 45.0,
        clock: Callable[[], float] = time.monotonic,
        crash: CrashAfterAcks | None = None,
    ) -> None:
        self._redis = client
        self._crash = crash
        self._new_producer = new_producer
        self._producer = new_producer()
        self._fatal: KafkaError | None = None
        # A producer whose messages keep timing out for this long without one delivery is
        # replaced too: after a broker restart librdkafka can stay stuck (seen in CI: timeouts
        # for minutes with the broker back). A copy it did deliver is harmless downstream.
        self._stuck_after_s = stuck_after_s
        self._progress_at = clock()  # the producer's start or its last delivery
        self._stuck = False
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._batch = batch_size
        self._block_ms = block_ms
        self._read_every_s = read_every_s
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._claim_every_s = claim_every_s
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._state = _State()
        self._failures = 0
        self._next_claim = 0.0
        self._group_ready = False
        self._loop = Loop(
            self._step,
            name=f"outbox-relay {stream}",
            logger=_LOGGER,
            failure="outbox relay step failed",
            expected=REDIS_ERRORS,  # Redis away: nothing to read; try again soon
            on_failure=self._lost_redis,
        )
        self._closed = False

    # -- the loop ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Read, produce, confirm: one pass. Returns how many entries it handed to Kafka."""
        self._ensure_group()
        entries = self._read_new()
        now = self._clock()
        if now >= self._next_claim:
            self._next_claim = now + self._claim_every_s
            entries += self._claim_abandoned()
            self._update_backlog()
        entries += self._due_retries(now)
        for entry in entries:
            self._produce(entry)
        self._producer.poll(0)  # the acks that came meanwhile; the read above did the waiting
        self._confirm_delivered()
        if self._fatal is not None or self._stuck:
            self._replace_producer()
        return len(entries)

    def start(self) -> None:
        if self._loop.running or self._closed:
            return
        self._loop.start()
        atexit.register(self.stop)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop, give Kafka `timeout_s` to confirm what is in flight, and close the
        producer. What Kafka did not confirm stays pending: another relay's sweeper takes it
        over. A second call (atexit after an explicit stop) does nothing."""
        if self._closed:
            return
        self._closed = True
        self._loop.stop(timeout_s)
        self._producer.flush(timeout_s)
        try:
            self._confirm_delivered()
        except redis.RedisError:
            pass
        _close(self._producer)

    def drain(self, timeout_s: float) -> bool:
        """Run until nothing this relay read is waiting for Kafka (tests, shutdown)."""
        deadline = self._clock() + timeout_s
        while self._clock() < deadline:
            self.run_once()
            if not self._state.in_flight and not self._state.retry:
                return True
        return False

    def _step(self) -> float:
        started = time.monotonic()
        if self.run_once() >= self._batch:
            return 0.0  # a backlog: read on at once
        # At most one pass per read_every_s: the events a busy replica records meanwhile are
        # read, produced and acknowledged together, rather than one Redis round trip each.
        # An empty read has already blocked that long (block_ms), so an idle relay still waits
        # on XREADGROUP alone.
        return max(0.0, self._read_every_s - (time.monotonic() - started))

    def _lost_redis(self, exc: Exception) -> None:
        if isinstance(exc, REDIS_ERRORS):  # the stream may be gone with its group: create both
            self._group_ready = False

    # -- steps ------------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read_new(self) -> list[_Entry]:
        # Nothing pending: wait up to block_ms for new entries. Entries still waiting for
        # Kafka (for the producer's linger, then its ack) or for a retry: wait a shorter
        # while, so that acks are collected soon, without asking Redis in a tight loop (that
        # spin was most of an idle bidder's CPU while another replica's ads were relayed).
        waiting = self._state.in_flight or self._state.retry
        block = min(self._block_ms, _WAITING_BLOCK_MS) if waiting else self._block_ms
        reply = self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self._batch, block=block
        )
        return [_entry(i, f) for _, messages in reply or () for i, f in messages if f]

    def _claim_abandoned(self) -> list[_Entry]:
        """Entries idle past the claim time: their relay died, or Kafka never confirmed them."""
        claimed: list[_Entry] = []
        start: bytes | str = "0-0"
        for _ in range(20):  # bounded per pass; the rest next time
            reply = self._redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self._claim_idle_ms,
                start_id=start,
                count=self._batch,
            )
            start, messages = reply[0], reply[1]
            for entry_id, fields in messages:
                if not fields:  # deleted meanwhile (delivered by its old owner): forget it
                    self._redis.xack(self.stream, self.group, entry_id)
                elif entry_id not in self._state.in_flight:
                    claimed.append(_entry(entry_id, fields))
            if start in (b"0-0", "0-0"):
                break
        if claimed:
            OUTBOX_CLAIMED.inc(len(claimed))
            _LOGGER.info("outbox relay took over abandoned events", extra={"count": len(claimed)})
        return claimed

    def _due_retries(self, now: float) -> list[_Entry]:
        due = [entry for at, entry in self._state.retry if at <= now]
        if due:
            self._state.retry = [(at, e) for at, e in self._state.retry if at > now]
            # Keep our claim fresh, so no sweeper takes entries we are still working on.
            self._redis.xclaim(
                self.stream, self.group, self.consumer, 0, [e.entry_id for e in due], justid=True
            )
        return due

    def _produce(self, entry: _Entry) -> None:
        if self._fatal is not None:  # this producer can deliver nothing any more
            self._state.retry.append((self._clock(), entry))
            return

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if self._state.in_flight.pop(entry.entry_id, None) is None:
                return  # a report of a replaced producer: the entry was produced again
            if err is None:
                self._state.delivered.append((entry.entry_id, entry.topic))
                self._progress_at = self._clock()
            else:
                self._failed(entry, err)

        while True:
            try:
                self._producer.produce(
                    entry.topic,
                    value=entry.value,
                    key=entry.key,
                    headers=entry.headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the producer's queue is full: let it deliver some first
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._failed(entry, exc.args[0])
                return
        self._state.in_flight[entry.entry_id] = entry

    def _failed(self, entry: _Entry, err: KafkaError) -> None:
        """Kafka did not take or confirm `entry`: produce it again after a pause."""
        OUTBOX_DELIVERY_FAILURES.inc()
        self._failures += 1
        if err.fatal() or err.code() == KafkaError._FATAL:  # the code may come without the flag
            self._fatal = err
        elif (
            err.code() == KafkaError._MSG_TIMED_OUT
            and self._clock() - self._progress_at >= self._stuck_after_s
        ):
            self._stuck = True
        elif self._failures in (1, 10, 100) or self._failures % 1000 == 0:
            _LOGGER.warning(
                "outbox relay: Kafka did not confirm events; producing them again",
                extra={"error": str(err), "failuresSoFar": self._failures},
            )
        self._state.retry.append((self._clock() + self._retry_after_s, entry))

    def _replace_producer(self) -> None:
        """After a fatal error, or a producer that delivered nothing for `stuck_after_s` while
        its messages timed out: a new producer, and everything in flight is produced again (at
        once; event ids make a copy that did reach Kafka harmless downstream)."""
        why = "fatal Kafka producer error" if self._fatal is not None else "producer stuck"
        _LOGGER.error(
            f"outbox relay: {why}; starting a new producer",
            extra={"error": str(self._fatal), "inFlight": len(self._state.in_flight)},
        )
        OUTBOX_PRODUCER_RESTARTS.inc()
        now = self._clock()
        self._state.retry.extend((now, entry) for entry in self._state.in_flight.values())
        self._state.in_flight.clear()
        old, self._producer, self._fatal = self._producer, self._new_producer(), None
        self._stuck, self._progress_at = False, now
        _close(old)

    def _confirm_delivered(self) -> None:
        done, self._state.delivered = self._state.delivered, []
        if not done:
            return
        ids = [entry_id for entry_id, _ in done]
        if self._crash is not None:
            self._crash.acknowledged(len(ids))
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
        except redis.RedisError:
            # Delivered but not acknowledged: a sweeper sends them again later, and event ids
            # make that copy harmless. Keep trying to acknowledge them ourselves meanwhile.
            self._state.delivered = done + self._state.delivered
            raise
        for _, topic in done:
            OUTBOX_RELAYED.labels(topic).inc()

    def _update_backlog(self) -> None:
        OUTBOX_BACKLOG.labels(self.stream).set(self._redis.xlen(self.stream))


def _close(producer: Producer) -> None:
    """Drop what `producer` still holds and close it (no waiting: nothing is left to send)."""
    try:
        producer.purge()
        producer.close()
    except (KafkaException, RuntimeError):
        pass  # a producer in a fatal state may refuse; it is dropped either way


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> _Entry:
    headers: list[tuple[str, str | bytes | None]] | None = None
    request_id = fields.get(b"rid")
    if request_id:
        headers = [(REQUEST_ID_HEADER, request_id)]
        if fields.get(b"tp"):
            headers.append((TRACEPARENT_HEADER, fields[b"tp"]))
    return _Entry(
        entry_id=entry_id,
        topic=fields[b"topic"].decode(),
        key=fields.get(b"key"),
        value=fields[b"value"],
        headers=headers,
    )


class OutboxRelays:
    """One relay per shard's outbox stream, started and stopped together (`start_relay`)."""

    def __init__(self, relays: list[OutboxRelay]) -> None:
        self.relays = relays

    def start(self) -> None:
        for relay in self.relays:
            relay.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        for relay in self.relays:
            relay.stop(timeout_s)

    def drain(self, timeout_s: float) -> bool:
        """Run every relay until nothing it read waits for Kafka (tests, shutdown)."""
        return all(relay.drain(timeout_s) for relay in self.relays)


def start_relay(
    redis_url: str, brokers: str, *, outbox_prefix: str = OUTBOX_PREFIX, **options: Any
) -> OutboxRelays:
    """A relay for each shard's stream on this replica, on one Redis connection pool (a cluster
    client on a cluster URL), started (call once per process)."""
    client = connect(redis_url, timeout_s=5, connect_timeout_s=2)
    # The one read of the environment here: the test profile's fault seam, off unless set.
    options.setdefault("crash", CrashAfterAcks.from_environment(os.environ))
    relays = OutboxRelays(
        [
            OutboxRelay(client, lambda: kafka_producer(brokers), stream=stream, **options)
            for stream in outbox_streams(key_layout(redis_url), outbox_prefix)
        ]
    )
    relays.start()
    return relays
