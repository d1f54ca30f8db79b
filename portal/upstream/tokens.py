"""The bearer token, shared by every process through the Django cache.

NOTES.md point 2: the token's expiry is the JWT's `exp` claim when it has one,
else `EVERLYWELL_TOKEN_LIFETIME`; it is refreshed `EVERLYWELL_TOKEN_REFRESH_MARGIN`
seconds early (at most half its lifetime early, so a short-lived token is still
reused).

Each process also keeps the last entry it read or stored, and hands it out without
asking the shared cache until its refresh time (the default cache is a database
table: one read per call would mean a query, and a connection, in every pool
thread). A value the API just answered 401 to is never taken from that copy: the
shared cache is read again, so a token another process already refreshed is
picked up, and otherwise it is refreshed as below.

When it must be refreshed, one caller does it:

- threads of one process queue on a `threading.Lock` and re-read the cache once
  they hold it, so they never poll;
- processes take a cache lock (`cache.add`, atomic in every backend, with a TTL so
  a crashed holder cannot block the others for long); the others wait a bounded
  time, re-reading the cache, and only fetch a token themselves if the holder
  never delivers one.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable

import jwt
from django.core.cache import caches

from portal.upstream.errors import UpstreamUnavailable
from portal.upstream.types import Token

logger = logging.getLogger("portal.upstream")

TOKEN_KEY = "upstream:token"  # noqa: S105 (a cache key, not a secret)
LOCK_KEY = "upstream:token:lock"
POLL_INTERVAL = 0.05


def token_expiry(value: str, *, now: float, default_lifetime: float) -> float:
    """When `value` expires: the JWT `exp` claim (read without verifying the
    signature: we are not its audience, only its bearer), else now + the lifetime."""
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return now + default_lifetime


class TokenCache:
    """Hands out a valid token, fetching a new one (once, for everyone) when needed."""

    def __init__(
        self,
        *,
        fetch: Callable[[], Token],
        cache=None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._fetch = fetch
        self._cache = cache
        self._clock = clock
        self._sleep = sleep
        self._thread_lock = threading.Lock()
        # The last entry read from or written to the shared cache. Replaced whole
        # (one attribute assignment, atomic), never changed in place.
        self._local: dict | None = None

    @property
    def cache(self):
        # Resolved per call: Django's cache handles are per thread.
        return self._cache if self._cache is not None else caches["default"]

    def get(self, *, margin: float, patience: float, rejected: str | None = None) -> Token:
        """A token that is not due for refresh and is not `rejected` (the value the
        API just answered 401 to).

        `patience` is the longest a token request may take (timeouts and retries):
        the cross-process lock lives that long, and waiters wait about as long.
        """
        token = self._read_fresh(rejected)
        if token:
            return token
        if not self._thread_lock.acquire(timeout=patience * 2):
            raise UpstreamUnavailable("timed out waiting for another thread to refresh the token")
        try:
            # Another thread may have refreshed it while this one queued.
            return self._read_fresh(rejected) or self._refresh_across_processes(margin, patience, rejected)
        finally:
            self._thread_lock.release()

    def _read_fresh(self, rejected: str | None) -> Token | None:
        token = self._usable(self._local, rejected)
        if token:
            return token
        entry = self.cache.get(TOKEN_KEY)
        if not isinstance(entry, dict):
            return None
        self._local = entry
        return self._usable(entry, rejected)

    def _usable(self, entry: dict | None, rejected: str | None) -> Token | None:
        if entry is None or entry.get("value") == rejected or entry.get("refresh_at", 0) <= self._clock():
            return None
        return Token(value=entry["value"], expires_at=entry["expires_at"])

    def _refresh_across_processes(self, margin: float, patience: float, rejected: str | None) -> Token:
        owner = uuid.uuid4().hex
        # A holder slower than `patience` is presumed dead: its lock expires, and
        # waiters stop waiting a little later.
        lock_ttl = max(1, math.ceil(patience))
        deadline = self._clock() + lock_ttl + 1
        while True:
            if self.cache.add(LOCK_KEY, owner, timeout=lock_ttl):
                try:
                    return self._read_fresh(rejected) or self._fetch_and_store(margin)
                finally:
                    # Only the owner deletes; a lock that expired and was retaken is left alone.
                    if self.cache.get(LOCK_KEY) == owner:
                        self.cache.delete(LOCK_KEY)
            if self._clock() >= deadline:
                logger.warning("upstream token: refresh lock held too long elsewhere; fetching anyway")
                return self._fetch_and_store(margin)
            self._sleep(POLL_INTERVAL)
            token = self._read_fresh(rejected)
            if token:
                return token

    def _fetch_and_store(self, margin: float) -> Token:
        token = self._fetch()
        now = self._clock()
        lifetime = token.expires_at - now
        if lifetime <= 0:
            # Expired on arrival (clock skew?): use it once, do not share it.
            logger.warning("upstream token: the new token is already expired by our clock")
            return token
        refresh_at = token.expires_at - min(margin, lifetime / 2)
        entry = {"value": token.value, "expires_at": token.expires_at, "refresh_at": refresh_at}
        self.cache.set(TOKEN_KEY, entry, timeout=max(1, math.ceil(lifetime)))
        self._local = entry
        return token
