"""The platform's retry policy: classification, backoff, the retry loop."""

from __future__ import annotations

import math
import random

import psycopg
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from hypothesis import given
from hypothesis import strategies as st
from psycopg import errors as pg_errors

from etl_platform.core.retry import (
    Jitter,
    RetrySettings,
    TerminalError,
    TransientError,
    backoff_delays,
    classify,
    retry_call,
)


def pg_error(sqlstate: str, message: str = "boom") -> psycopg.Error:
    return pg_errors.lookup(sqlstate)(message)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Operation",
    )


# ----------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    "exc",
    [
        pg_error("40001"),
        pg_error("40P01"),
        pg_error("55P03", "canceling statement due to lock timeout"),
        pg_error("57P01"),
        pg_error("57P03"),
        pg_error("53300"),
        pg_error("08006"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("connection timeout expired"),
        psycopg.InternalError("ERROR: 1023 DETAIL: Serializable isolation violation on table"),
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("SlowDown", 503),
        client_error("Whatever", 500),
        client_error("Whatever", 503),
        client_error("Whatever", 429),
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        ReadTimeoutError(endpoint_url="http://x"),
        ConnectTimeoutError(endpoint_url="http://x"),
        ConnectionResetError("reset by peer"),
        TransientError("load orders"),
    ],
    ids=lambda e: f"{type(e).__name__}:{getattr(e, 'sqlstate', '')}{str(e)[:30]}",
)
def test_transient(exc):
    assert classify(exc) == "transient"


@pytest.mark.parametrize(
    "exc",
    [
        pg_error("57014", "canceling statement due to statement timeout"),
        pg_error("23505"),
        pg_error("42P01"),
        pg_error("22P02"),
        pg_error("28P01", "password authentication failed for user x"),
        psycopg.OperationalError("connection failed: FATAL: password authentication failed"),
        psycopg.OperationalError('connection failed: FATAL: database "nope" does not exist'),
        psycopg.ProgrammingError("syntax"),
        psycopg.InterfaceError("the connection is closed"),
        client_error("AccessDenied", 403),
        client_error("ValidationException"),
        client_error("ResourceNotFoundException"),
        client_error("ConditionalCheckFailedException"),
        NoCredentialsError(),
        ValueError("bad"),
        KeyError("x"),
        TerminalError("load orders"),
    ],
    ids=lambda e: f"{type(e).__name__}:{getattr(e, 'sqlstate', '')}{str(e)[:30]}",
)
def test_terminal(exc):
    assert classify(exc) == "terminal"


def test_statement_timeout_is_terminal_but_lock_timeout_is_transient():
    assert classify(pg_error("57014", "canceling statement due to statement timeout")) == "terminal"
    assert classify(pg_error("55P03", "canceling statement due to lock timeout")) == "transient"


def test_explicit_cause_chain_is_followed():
    try:
        try:
            raise client_error("ThrottlingException")
        except ClientError as inner:
            raise RuntimeError("scan page failed") from inner
    except RuntimeError as outer:
        assert classify(outer) == "transient"
    # an implicit context (exception raised while handling another) is not followed
    try:
        try:
            raise client_error("ThrottlingException")
        except ClientError:
            raise RuntimeError("bug in the handler")  # noqa: B904
    except RuntimeError as outer:
        assert classify(outer) == "terminal"


def test_cyclic_cause_chain_terminates():
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a) == "terminal"


# ----------------------------------------------------------------------------- backoff


@given(
    max_attempts=st.integers(1, 60),
    base=st.floats(0, 100, allow_nan=False),
    cap=st.floats(0, 1000, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_backoff_properties(max_attempts, base, cap, seed):
    ceilings = backoff_delays(max_attempts, base, cap, Jitter.NONE)
    assert len(ceilings) == max_attempts - 1
    assert all(0 <= c <= cap for c in ceilings)
    assert all(a <= b for a, b in zip(ceilings, ceilings[1:], strict=False))  # non-decreasing
    jittered = backoff_delays(max_attempts, base, cap, Jitter.FULL, seed=seed)
    assert all(0 <= d <= c for d, c in zip(jittered, ceilings, strict=True))  # bounded
    assert jittered == backoff_delays(max_attempts, base, cap, "full", seed=seed)  # seeded
    assert all(math.isfinite(d) for d in jittered)


def test_backoff_exact_ceilings():
    assert backoff_delays(6, 1.0, 10.0, Jitter.NONE) == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff_delays(1, 1.0, 10.0) == []
    rng = random.Random(7)
    assert backoff_delays(4, 1.0, 10.0, rng=rng) == backoff_delays(4, 1.0, 10.0, seed=7)


def test_backoff_does_not_overflow_for_many_attempts():
    delays = backoff_delays(2000, 0.5, 30.0, Jitter.NONE)
    assert delays[-1] == 30.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 1.0, 1.0), "max_attempts"),
        ((True, 1.0, 1.0), "max_attempts"),
        ((3, -1.0, 1.0), ">= 0"),
        ((3, 1.0, float("nan")), ">= 0"),
    ],
)
def test_backoff_refusals(args, match):
    with pytest.raises(ValueError, match=match):
        backoff_delays(*args)


def test_unknown_jitter_is_refused():
    with pytest.raises(ValueError):
        backoff_delays(3, 1.0, 1.0, "sideways")


# ----------------------------------------------------------------------------- retry_call


class Flaky:
    def __init__(self, failures: list[BaseException], result: str = "ok") -> None:
        self.failures = list(failures)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


def test_retry_call_retries_transient_errors_then_succeeds():
    fn = Flaky([pg_error("40001"), client_error("SlowDown", 503)])
    slept: list[float] = []
    seen: list[tuple[int, float, str]] = []
    result = retry_call(
        fn,
        max_attempts=5,
        base_delay=1.0,
        max_delay=3.0,
        jitter=Jitter.NONE,
        sleep=slept.append,
        on_retry=lambda attempt, delay, exc: seen.append((attempt, delay, type(exc).__name__)),
    )
    assert result == "ok"
    assert fn.calls == 3
    assert slept == [1.0, 2.0]
    assert seen == [(1, 1.0, "SerializationFailure"), (2, 2.0, "ClientError")]


def test_retry_call_stops_at_the_first_terminal_error():
    original = pg_error("23505", "duplicate key value violates unique constraint")
    fn = Flaky([pg_error("40001"), original])
    slept: list[float] = []
    with pytest.raises(TerminalError) as info:
        retry_call(
            fn, max_attempts=5, base_delay=0.1, max_delay=1, sleep=slept.append, what="merge orders"
        )
    assert fn.calls == 2
    assert len(slept) == 1
    assert info.value.__cause__ is original and info.value.cause is original
    assert info.value.attempts == 2
    message = str(info.value)
    assert "merge orders" in message and "UniqueViolation" in message and "duplicate key" in message


def test_retry_call_gives_up_after_max_attempts():
    errors = [pg_error("40001", f"conflict {i}") for i in range(3)]
    fn = Flaky(errors)
    slept: list[float] = []
    with pytest.raises(TransientError) as info:
        retry_call(fn, max_attempts=3, base_delay=0.5, max_delay=10, sleep=slept.append, seed=1)
    assert fn.calls == 3
    assert len(slept) == 2 and all(0 <= s <= 1.0 for s in slept)
    assert info.value.__cause__ is errors[-1]
    assert "after 3 attempts" in str(info.value)
    assert "conflict 2" in str(info.value)
    assert "Flaky" in str(info.value)  # default `what` is the callable's name


def test_retry_call_single_attempt_never_sleeps():
    fn = Flaky([pg_error("40001")])
    with pytest.raises(TransientError):
        retry_call(fn, max_attempts=1, base_delay=1, max_delay=1, sleep=pytest.fail)


def test_retry_call_does_not_double_wrap_our_errors():
    terminal = TerminalError("inner step", ValueError("x"))
    with pytest.raises(TerminalError) as info:
        retry_call(
            Flaky([terminal]), max_attempts=3, base_delay=0, max_delay=0, sleep=lambda s: None
        )
    assert info.value is terminal


def test_retry_call_lets_base_exceptions_through():
    fn = Flaky([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        retry_call(fn, max_attempts=3, base_delay=0, max_delay=0, sleep=lambda s: None)
    assert fn.calls == 1


# ----------------------------------------------------------------------------- settings


def test_retry_settings_drive_both_layers():
    settings = RetrySettings(max_attempts=4, base_delay_s=2.0, max_delay_s=5.0)
    assert settings.jitter is Jitter.FULL
    assert settings.dagster_retry_policy_kwargs() == {
        "max_retries": 3,
        "delay": 2.0,
        "backoff": "EXPONENTIAL",
        "jitter": "FULL",
    }
    assert settings.dagster_longest_delay_s == 14.0  # (2**3 - 1) * 2: Dagster does not cap
    assert settings.delays(seed=3) == backoff_delays(4, 2.0, 5.0, Jitter.FULL, seed=3)
    no_jitter = RetrySettings(jitter="none")  # type: ignore[arg-type]
    assert no_jitter.jitter is Jitter.NONE
    assert no_jitter.dagster_retry_policy_kwargs()["jitter"] is None
    fn = Flaky([pg_error("40P01")])
    assert settings.call(fn, sleep=lambda s: None) == "ok"


def test_retry_settings_match_dagster_retry_policy():
    dg = pytest.importorskip("dagster")
    kwargs = RetrySettings().dagster_retry_policy_kwargs()
    policy = dg.RetryPolicy(
        max_retries=kwargs["max_retries"],
        delay=kwargs["delay"],
        backoff=dg.Backoff[kwargs["backoff"]],
        jitter=dg.Jitter[kwargs["jitter"]] if kwargs["jitter"] else None,
    )
    assert policy.max_retries == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay_s": 10.0, "max_delay_s": 1.0}, "base_delay_s <= max_delay_s"),
        ({"base_delay_s": -1.0}, "base_delay_s"),
    ],
)
def test_retry_settings_refusals(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetrySettings(**kwargs)
