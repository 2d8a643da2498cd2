"""How pipeline steps retry and fail: the platform's one failure policy, for every component.

Dagster's ``RetryPolicy`` re-runs a step on any exception; the platform only wants that for
transient errors (throttling, connection loss, serialization failures, lock timeouts). A step
function is wrapped whole by :func:`step_failure_policy`: terminal errors become
``dg.Failure(allow_retries=False)``, so a bad item or a broken query fails the run at once, visibly,
instead of being retried into the same wall (and rescanning a segment on every try).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dagster as dg

from etl_platform.core.retry import RetrySettings, classify

STEP_RETRIES = RetrySettings()

F = TypeVar("F", bound=Callable[..., Any])


def step_retry_policy(settings: RetrySettings = STEP_RETRIES) -> dg.RetryPolicy:
    """Exponential backoff with full jitter, from the platform's one set of retry numbers."""
    kwargs = settings.dagster_retry_policy_kwargs()
    return dg.RetryPolicy(
        max_retries=kwargs["max_retries"],
        delay=kwargs["delay"],
        backoff=dg.Backoff[kwargs["backoff"]],
        jitter=dg.Jitter[kwargs["jitter"]] if kwargs["jitter"] else None,
    )


@contextmanager
def _terminal_errors_fail_fast(what: str) -> Iterator[None]:
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if classify(exc) == "transient":
            raise
        raise dg.Failure(
            description=f"{what}: {type(exc).__name__}: {exc}", allow_retries=False
        ) from exc


def step_failure_policy(what: str) -> Callable[[F], F]:
    """Wrap a step function's whole body: transient errors propagate (the step's
    ``RetryPolicy`` retries them), terminal ones fail the step at once with a description that
    starts with ``what`` and carries the error, which names the bad input.

    ``what`` may name the step's arguments as ``str.format`` fields, filled in from each call
    (``"extract of segment {segment} of {config.table_name!r}"``), so the failure names the
    partition and the input it was working on."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        def describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if "{" not in what:
                return what
            try:
                return what.format_map(signature.bind_partial(*args, **kwargs).arguments)
            except (AttributeError, IndexError, KeyError, TypeError, ValueError):
                return what

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator(*args: Any, **kwargs: Any) -> Any:
                with _terminal_errors_fail_fast(describe(args, kwargs)):
                    yield from fn(*args, **kwargs)

            return generator  # type: ignore[return-value]

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any) -> Any:
            with _terminal_errors_fail_fast(describe(args, kwargs)):
                return fn(*args, **kwargs)

        return plain  # type: ignore[return-value]

    return decorate
