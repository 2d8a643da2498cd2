"""How pipeline steps retry and fail, built once from ``core.retry`` for every component.

Dagster's ``RetryPolicy`` re-runs a step on any exception; the platform only wants that for
transient errors (throttling, connection loss, serialization failures, lock timeouts). Terminal
errors are re-raised as ``dg.Failure(allow_retries=False)`` so a bad item or a broken query fails
the run at once, visibly, instead of being retried into the same wall.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from etl_platform.core.retry import RetrySettings, classify

STEP_RETRIES = RetrySettings()


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
def terminal_errors_fail_fast(what: str) -> Iterator[None]:
    """Let transient errors propagate (the step's RetryPolicy retries them); turn terminal ones
    into a non-retryable ``dg.Failure`` whose description names ``what`` was being done."""
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
