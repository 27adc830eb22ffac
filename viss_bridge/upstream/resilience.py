"""The protections every upstream call shares, whatever it speaks (legacy SOAP, the platform's REST).

One copy of the policy, so a SOAP provider and the platform fail the same way:

* a circuit breaker per upstream opens after N consecutive failures and answers
  ``ProviderUnavailable`` at once without calling; after ``reset_after`` seconds a single
  probe call is let through, and its outcome closes or reopens the breaker;
* at most ``max_concurrent`` calls per upstream are in flight (per process);
* reads are retried a bounded number of times with exponential backoff, but only for
  failures where the request surely had no effect or the upstream surely did not answer
  (an error marked ``retryable``), and never past the call's own time budget; writes are
  tried once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, TypeVar

from viss_bridge.upstream import errors
from viss_bridge.upstream.errors import UpstreamError

log = logging.getLogger("viss_bridge.upstream.client")

T = TypeVar("T")


class CircuitBreaker:
    """closed -> (N consecutive failures) -> open -> (reset_after) -> half-open: one probe -> closed | open."""

    def __init__(self, failures: int, reset_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset_after = reset_after
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.reset_after:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half-open" and not self._probing:
                self._probing = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self.clock()
            self._probing = False

    def release_probe(self) -> None:
        """A probe that ended without telling anything about the provider (e.g. our own bug)."""
        with self._lock:
            self._probing = False


def failure(cause: str, provider: str, message: str, retryable: bool = False) -> UpstreamError:
    """An UpstreamError that says whether trying again may help (the request surely had no effect)."""
    error = UpstreamError(cause, provider, message)
    error.retryable = retryable  # type: ignore[attr-defined]
    return error


def transport_failure(exc: BaseException, kind: str, name: str, operation: str, connect_timeout: float,
                      operation_timeout: float) -> UpstreamError | None:
    """A ``requests`` failure (no usable HTTP answer) in the bridge's words; None if it is none of these.

    ``kind`` and ``name`` name the upstream in the message ("provider pmlp-fpr", "platform dagr").
    A TLS failure (untrusted certificate, refused client certificate) is not retried: trying again
    cannot fix it. A refused or dropped connection is retried (the request surely had no effect);
    a read timeout is not (the operation timeout is the consumer's budget)."""
    import requests

    label = f"{kind} {name}"
    if isinstance(exc, requests.exceptions.SSLError):  # before ConnectionError, its base
        return failure(errors.PROVIDER_SECURITY, name, f"TLS with {label} failed: {_short(exc)}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return failure(errors.PROVIDER_UNAVAILABLE, name, f"{label} did not accept a connection "
                       f"within {connect_timeout} s", retryable=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return failure(errors.PROVIDER_TIMEOUT, name,
                       f"{label} did not answer {operation} within {operation_timeout} s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return failure(errors.PROVIDER_UNAVAILABLE, name, f"{label} cannot be reached: {_short(exc)}",
                       retryable=True)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


class CallGuard:
    """Breaker, concurrency cap and read retries around one upstream's calls.

    ``attempt(n)`` makes try number ``n`` and returns the answer, or returns (not raises) the
    :class:`UpstreamError` describing the failure, with ``retryable`` set where trying again may help.
    """

    def __init__(self, name: str, *, failures: int, reset_after: float, max_concurrent: int,
                 attempts: int, backoff: float, connect_timeout: float, operation_timeout: float) -> None:
        self.name = name
        self.breaker = CircuitBreaker(failures, reset_after)
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self.attempts = attempts
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.operation_timeout = operation_timeout

    def run(self, operation: str, attempt: Callable[[int], Any], *, read: bool = True) -> Any:
        if not self.breaker.allow():
            raise UpstreamError(errors.PROVIDER_UNAVAILABLE, self.name,
                                f"provider {self.name} is failing; the circuit breaker is open (not called)", called=False)
        if not self.slots.acquire(timeout=min(self.connect_timeout, 1.0)):
            self.breaker.release_probe()
            raise UpstreamError(errors.PROVIDER_BUSY, self.name,
                                f"provider {self.name} already has {self.max_concurrent} calls in flight", called=False)
        try:
            return self._with_retries(operation, attempt, read)
        finally:
            self.slots.release()

    def _with_retries(self, operation: str, attempt: Callable[[int], Any], read: bool) -> Any:
        attempts = self.attempts if read else 1
        deadline = time.monotonic() + self.connect_timeout + self.operation_timeout
        delay = self.backoff
        number = 1
        while True:
            outcome = attempt(number)
            if not isinstance(outcome, UpstreamError):
                self.breaker.success()
                return outcome
            if getattr(outcome, "retryable", False) and number < attempts and time.monotonic() + delay < deadline:
                log.info("retrying provider call", extra={"provider": self.name, "operation": operation,
                                                          "attempt": number, "cause": outcome.cause})
                time.sleep(delay)
                delay *= 2
                number += 1
                continue
            # Failures that say nothing about the upstream's health do not move the breaker: our request was
            # wrong, our configuration or log failed, or the platform (healthy) refused our connection.
            if outcome.is_client_side or outcome.cause in (errors.PROVIDER_CONFIG, errors.LOGGING_FAILED,
                                                           errors.PLATFORM_ACCESS_DENIED):
                self.breaker.release_probe()
            else:
                self.breaker.failure()
            raise outcome
