"""Provider pacing: a per-sender message rate, shared by every worker through Redis.

Twilio accepts a limited number of messages per second per sender (a long code: 1; a Messaging Service:
the sum of its senders' rates) and answers 429 (error 20429) beyond it. A storm sent by many workers at
once would make its own 429s and lose seconds in backoff; instead each send reserves the next free slot
of its sender's schedule before the call. The schedule is one Redis key per sender holding the time the
next message may go (GCRA, the "theoretical arrival time"), moved by a Lua script, so reservations are
atomic across all processes and timed by the Redis server's clock, not each worker's.

A send whose slot is near (within `max_wait`) sleeps until it; one whose slot is further away reserves
nothing and raises Paced: the delivery is rescheduled for then, never dropped, and no attempt is counted.
If Redis cannot be reached, the send goes out unpaced (a page is worth a possible 429, which is retried).
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

from webapp.channels.base import TransientError

log = logging.getLogger(__name__)

KEY = "opsrelay:pace:{}"

# KEYS[1] the sender's schedule; ARGV[1] microseconds between messages; ARGV[2] longest wait to accept (µs).
# Returns {1, wait} (slot reserved: go in `wait` µs) or {0, wait} (nothing reserved: the slot is that far).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
local wait = next_free - now
if wait > tonumber(ARGV[2]) then return {0, math.floor(wait)} end
local after = next_free + interval
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.floor((after - now) / 1000) + 1000)
return {1, math.floor(wait)}
"""


class Paced(TransientError):
    """The sender's rate is used up for longer than a send may wait: send again at `retry_after` seconds."""

    def __init__(self, sender: str, retry_after: float):
        super().__init__(f"paced: {sender} is at its rate limit for {retry_after:.1f} s", code="paced")
        self.retry_after = retry_after


class Pacer:
    """Reserves send slots for senders at `per_second` messages a second (0: no pacing)."""

    def __init__(self, connection: Redis, per_second: float, *, max_wait: float = 2.0, max_late: float = 0.25):
        self.connection = connection
        self.per_second = float(per_second)
        self.max_wait = max_wait
        self.max_late = max_late
        self._script = connection.register_script(_RESERVE)
        self._warned = False

    def wait_for_slot(self, sender: str) -> float:
        """Block until `sender` may send (seconds waited); Paced if that would take longer than max_wait.

        A thread that wakes more than `max_late` after its slot (the process was paused: GC, CPU steal, a
        stopped container) does not send on the stale slot: every thread of a paused process would go at
        once, a burst the provider answers with 429s. It reserves a fresh slot instead (the stale one is
        left unused, which only slows the sender)."""
        if self.per_second <= 0:
            return 0.0
        interval = round(1_000_000 / self.per_second)
        started = time.monotonic()
        while True:
            asked = time.monotonic()
            try:
                reserved, wait = self._script(keys=[KEY.format(sender)], args=[interval, round(self.max_wait * 1e6)])
            except RedisError as exc:
                if not self._warned:
                    log.warning("pacing unavailable (%s): sending without waiting for a slot", type(exc).__name__)
                    self._warned = True
                return time.monotonic() - started
            self._warned = False
            seconds = int(wait) / 1e6
            if not int(reserved):
                raise Paced(sender, seconds)
            slot = asked + seconds  # at or before the slot Redis gave, on this process's clock
            if seconds > 0:
                time.sleep(seconds)
            now = time.monotonic()
            if now - slot <= self.max_late:
                return now - started
            log.info("pacing: woke %.2f s after %s's slot; reserving a fresh one", now - slot, sender)
