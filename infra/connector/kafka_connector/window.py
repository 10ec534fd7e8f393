"""How long a poll waits for records: short when the load is light, longer when it is heavy.

Each cycle invokes every subscribed function once per partition that has records. At a light
load a partition holds one record per cycle however long the poll waits, so waiting longer only
delays the live numbers. Once a partition would hold several records per cycle, a longer wait
means fewer, larger batches: fewer invocations for the same records, and less CPU per event.

The window therefore grows with the records arriving per assigned partition: it stays at the
minimum (CONNECTOR_BATCH_WAIT_MS) while the longest window would still bring about one record
per partition, and reaches the maximum (CONNECTOR_BATCH_WAIT_MAX_MS) when the longest window
would bring FULL_AT records per partition. The arrival rate is a moving average over the
cycles, measured from one poll's return to the next, so records that arrive while a cycle
delivers are counted too. The window is counted from the previous poll's return, so the time a
cycle spends delivering is part of it, not added to it: after a cycle longer than the window
the next poll does not wait. A poll that fills up (CONNECTOR_POLL_SIZE records) returns early
whatever the window, so a backlog never waits for it.

Example:
    >>> w = BatchWindow(minimum_s=0.05, maximum_s=0.25)
    >>> w.seconds
    0.05
    >>> for _ in range(20):
    ...     _ = w.observe(records=300, elapsed_s=0.25, partitions=24)  # 1,200 records/s
    >>> w.seconds
    0.25
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Records per partition that the longest window would bring, at which the window starts to
# grow and at which it reaches its maximum.
STARTS_AT = 1.0
FULL_AT = 4.0
# Weight of the newest cycle in the moving average of the arrival rate.
SMOOTHING = 0.3


@dataclass
class BatchWindow:
    minimum_s: float
    maximum_s: float
    rate: float = 0.0  # records per second, moving average
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.minimum_s <= self.maximum_s:
            raise ValueError(
                f"expected 0 < minimum <= maximum, got {self.minimum_s}, {self.maximum_s}"
            )
        self.seconds = self.minimum_s

    def observe(self, records: int, elapsed_s: float, partitions: int) -> float:
        """Account one poll (`records` read, `elapsed_s` after the previous poll returned) and
        return the next poll's window."""
        if elapsed_s > 0:
            self.rate += SMOOTHING * (records / elapsed_s - self.rate)
        per_partition = self.rate * self.maximum_s / max(partitions, 1)
        share = (per_partition - STARTS_AT) / (FULL_AT - STARTS_AT)
        share = min(max(share, 0.0), 1.0)
        self.seconds = self.minimum_s + share * (self.maximum_s - self.minimum_s)
        return self.seconds
