"""The platform's one retry policy: what is worth retrying, how long to wait, how often.

No Dagster import: the Dagster layer builds its ``RetryPolicy`` from the same
:class:`RetrySettings` (:meth:`RetrySettings.dagster_retry_policy_kwargs`), and in-process
loops use :func:`retry_call`.

**Transient** (retry with capped exponential backoff and full jitter):

* PostgreSQL/Redshift: SQLSTATE ``40001`` serialization_failure (Redshift also reports
  "1023 ... Serializable isolation violation" with SQLSTATE ``XX000``: matched by message),
  ``40P01`` deadlock_detected, ``55P03`` lock_not_available (what ``lock_timeout`` raises),
  ``57P01``/``57P02``/``57P03`` server shutting down / restarting, ``53300`` too many
  connections, any class ``08`` connection exception, and a psycopg ``OperationalError``
  without SQLSTATE (the connection was lost or could not be opened) unless its message says
  authentication failed or the database/role does not exist.
* AWS: botocore ``ClientError`` with a throttling code (``ProvisionedThroughputExceededException``,
  ``ThrottlingException``, ``RequestLimitExceeded``, ``SlowDown``, ...), HTTP 429 or any 5xx;
  ``EndpointConnectionError``, ``ConnectionClosedError``, ``ReadTimeoutError``,
  ``ConnectTimeoutError``; Python's ``ConnectionError``.
* :class:`TransientError` raised by our own code.

**Terminal** (fail now, visibly): everything else, notably ``57014`` query_canceled. That is
what ``statement_timeout`` raises, and a statement that ran out its time budget will most
likely do it again while adding load to a warehouse that is already struggling; it is also what
an operator's ``pg_cancel_backend`` raises, which must not be undone by a retry. Lock waits are
different: ``lock_timeout`` raises ``55P03`` and is retried.

An exception that is not recognized is classified by its explicit ``__cause__`` (``raise X
from Y``), so wrapping a throttling error does not make it terminal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

import psycopg
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

__all__ = [
    "RetryKind",
    "RetrySettings",
    "Jitter",
    "TerminalError",
    "TransientError",
    "backoff_delays",
    "classify",
    "is_concurrent_create",
    "retry_call",
]

T = TypeVar("T")
RetryKind = Literal["transient", "terminal"]

TRANSIENT_SQLSTATES: frozenset[str] = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up / recovery)
        "53300",  # too_many_connections
    }
)
#: Messages of SQLSTATE-less connection failures that no retry can fix.
_TERMINAL_CONNECT_MESSAGES = (
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # database "x" / role "x" does not exist
    "password is required",
    "invalid connection option",
    "invalid dsn",
)
_REDSHIFT_SERIALIZATION_MESSAGE = "serializable isolation violation"

TRANSIENT_AWS_ERROR_CODES: frozenset[str] = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflict",
    }
)
_TRANSIENT_AWS_EXCEPTIONS: tuple[type[BaseException], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectTimeoutError,
)


class TransientError(Exception):
    """A failure worth retrying; also what :func:`retry_call` raises when attempts ran out.
    The message names what failed; the original error is ``__cause__`` and ``cause``."""

    def __init__(
        self, what: str, cause: BaseException | None = None, *, attempts: int | None = None
    ) -> None:
        self.what = what
        self.cause = cause
        self.attempts = attempts
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        tries = f" after {attempts} attempts" if attempts is not None else ""
        super().__init__(f"{what} failed with a transient error{tries}{detail}")


class TerminalError(Exception):
    """A failure no retry can fix; the message names what failed, the original error is
    ``__cause__`` and ``cause``."""

    def __init__(
        self, what: str, cause: BaseException | None = None, *, attempts: int | None = None
    ) -> None:
        self.what = what
        self.cause = cause
        self.attempts = attempts
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        tries = f" (attempt {attempts})" if attempts is not None else ""
        super().__init__(f"{what} failed{tries}{detail}")


def _classify_psycopg(exc: psycopg.Error) -> RetryKind | None:
    state = exc.sqlstate
    message = str(exc).lower()
    if state in TRANSIENT_SQLSTATES or (state is not None and state.startswith("08")):
        return "transient"
    if _REDSHIFT_SERIALIZATION_MESSAGE in message:
        return "transient"
    if state is None and isinstance(exc, psycopg.OperationalError):
        if any(m in message for m in _TERMINAL_CONNECT_MESSAGES):
            return "terminal"
        return "transient"  # connection lost / could not connect
    return "terminal"


def _classify_client_error(exc: ClientError) -> RetryKind:
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    if code in TRANSIENT_AWS_ERROR_CODES:
        return "transient"
    status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
    if isinstance(status, int) and (status == 429 or status >= 500):
        return "transient"
    return "terminal"


def _classify_one(exc: BaseException) -> RetryKind | None:
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, TerminalError):
        return "terminal"
    if isinstance(exc, psycopg.Error):
        return _classify_psycopg(exc)
    if isinstance(exc, ClientError):
        return _classify_client_error(exc)
    if isinstance(exc, _TRANSIENT_AWS_EXCEPTIONS) or isinstance(exc, ConnectionError):
        return "transient"
    return None


#: What a ``CREATE ... IF NOT EXISTS`` raises when another session created the same object
#: after this one looked and before it committed: PostgreSQL checks existence without a lock,
#: so the loser hits the catalog's unique index (``23505``) or a duplicate-object error.
CONCURRENT_CREATE_SQLSTATES: frozenset[str] = frozenset(
    {
        "23505",  # unique_violation on pg_namespace / pg_type / pg_class name index
        "42P06",  # duplicate_schema
        "42P07",  # duplicate_table
        "42710",  # duplicate_object
    }
)


def is_concurrent_create(exc: BaseException) -> bool:
    """Whether ``exc``, raised by idempotent ``IF NOT EXISTS`` DDL, means another session
    created the object first: running the DDL again then finds it and does nothing."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in CONCURRENT_CREATE_SQLSTATES


def classify(exc: BaseException) -> RetryKind:
    """``"transient"`` or ``"terminal"`` per the module's rules; unknown errors are terminal
    unless their explicit ``__cause__`` chain holds a recognized one."""
    current: BaseException | None = exc
    for _ in range(16):  # bounded: cause chains can be cyclic
        if current is None:
            break
        kind = _classify_one(current)
        if kind is not None:
            return kind
        current = current.__cause__
    return "terminal"


class Jitter(StrEnum):
    """``FULL``: each delay uniform in [0, ceiling] (AWS "full jitter"); ``NONE``: the ceiling."""

    FULL = "full"
    NONE = "none"


def backoff_delays(
    max_attempts: int,
    base: float,
    cap: float,
    jitter: Jitter | str = Jitter.FULL,
    *,
    seed: int | None = None,
    rng: random.Random | None = None,
) -> list[float]:
    """The ``max_attempts - 1`` waits between attempts: ceiling ``min(cap, base * 2**i)``
    (non-decreasing, never above ``cap``), full jitter by default. Deterministic for a given
    ``seed`` (or ``rng``); unseeded calls use a fresh ``random.Random()``."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
    if not base >= 0 or not cap >= 0:  # also refuses NaN
        raise ValueError(f"base and cap must be >= 0 seconds, got base={base!r}, cap={cap!r}")
    mode = Jitter(jitter)
    source = rng if rng is not None else random.Random(seed)
    delays: list[float] = []
    for i in range(max_attempts - 1):
        # 2**i overflows float for large i: stop growing once the cap is reached
        ceiling = cap if i >= 1024 else min(cap, base * (2.0**i))
        delays.append(source.uniform(0.0, ceiling) if mode is Jitter.FULL else ceiling)
    return delays


def retry_call(
    fn: Callable[[], T],
    *,
    max_attempts: int,
    base_delay: float,
    max_delay: float,
    jitter: Jitter | str = Jitter.FULL,
    what: str | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    classify_error: Callable[[BaseException], RetryKind] = classify,
    seed: int | None = None,
) -> T:
    """Call ``fn()`` until it returns, retrying only transient errors (:func:`classify`).

    Before each retry ``on_retry(attempt, delay_s, error)`` is called (attempt = the one that
    just failed, from 1), then ``sleep(delay_s)``. A terminal error raises
    :class:`TerminalError` at once; running out of attempts raises :class:`TransientError`.
    Both name ``what`` (default: ``fn``'s qualified name) and chain the last error as
    ``__cause__``. Our own ``TerminalError``/``TransientError`` from ``fn`` are re-raised
    as they are. ``fn`` should open what it needs (connection, transaction) itself, so a retry
    starts clean. ``KeyboardInterrupt`` and other ``BaseException`` pass through untouched.
    """
    label = what or getattr(fn, "__qualname__", None) or repr(fn)
    delays = backoff_delays(max_attempts, base_delay, max_delay, jitter, seed=seed)
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            kind = classify_error(exc)
            if kind == "terminal":
                if isinstance(exc, TerminalError):
                    raise
                raise TerminalError(label, exc, attempts=attempt) from exc
            if attempt >= max_attempts:
                if isinstance(exc, TransientError) and exc.attempts is not None:
                    raise
                raise TransientError(label, exc, attempts=attempt) from exc
            delay = delays[attempt - 1]
            if on_retry is not None:
                on_retry(attempt, delay, exc)
            sleep(delay)


@dataclass(frozen=True)
class RetrySettings:
    """The platform's retry numbers, shared by in-process retries and Dagster's RetryPolicy.

    ``max_attempts`` counts the first try. Dagster's exponential backoff has no cap
    (:attr:`dagster_longest_delay_s`), so keep ``max_attempts`` small at that level.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise ValueError(
                f"need 0 <= base_delay_s <= max_delay_s, got {self.base_delay_s!r} and "
                f"{self.max_delay_s!r}"
            )
        object.__setattr__(self, "jitter", Jitter(self.jitter))

    def delays(self, *, seed: int | None = None) -> list[float]:
        """:func:`backoff_delays` for these settings."""
        return backoff_delays(
            self.max_attempts, self.base_delay_s, self.max_delay_s, self.jitter, seed=seed
        )

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str | None = None,
        on_retry: Callable[[int, float, BaseException], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """:func:`retry_call` with these settings."""
        return retry_call(
            fn,
            max_attempts=self.max_attempts,
            base_delay=self.base_delay_s,
            max_delay=self.max_delay_s,
            jitter=self.jitter,
            what=what,
            on_retry=on_retry,
            sleep=sleep,
        )

    def dagster_retry_policy_kwargs(self) -> dict[str, Any]:
        """Plain values for ``dg.RetryPolicy(max_retries=..., delay=..., backoff=dg.Backoff[b],
        jitter=dg.Jitter[j] if j else None)``: ``backoff`` is ``"EXPONENTIAL"``, ``jitter``
        ``"FULL"`` or None. Dagster has no cap: see :attr:`dagster_longest_delay_s`."""
        return {
            "max_retries": self.max_attempts - 1,
            "delay": self.base_delay_s,
            "backoff": "EXPONENTIAL",
            "jitter": "FULL" if self.jitter is Jitter.FULL else None,
        }

    @property
    def dagster_longest_delay_s(self) -> float:
        """The last (uncapped) wait of the Dagster policy above: Dagster's exponential backoff
        waits ``(2**n - 1) * delay`` before retry ``n``, with no ``max_delay_s`` cap."""
        retries = self.max_attempts - 1
        return (2.0**retries - 1.0) * self.base_delay_s
