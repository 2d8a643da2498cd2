"""Session fixtures: one real local stack (moto server over HTTP + pgserver PostgreSQL) in a
temporary directory, started by the same code as `etl-platform stack up`, stopped at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from etl_platform.local.stack import LocalStack, StackState


def stack_dir() -> Path:
    """A directory for a stack outside pytest's basetemp: pytest re-chmods
    /tmp/pytest-of-<user> to 0700 whenever a pytest session starts, which would lock the
    unprivileged `pgserver` user (PostgreSQL's owner when we run as root) out of its data."""
    return Path(tempfile.mkdtemp(prefix="etl_stack_"))


@pytest.fixture
def own_stack_dir() -> Iterator[Path]:
    """A stack directory for one test (see :func:`stack_dir`), removed afterwards."""
    root = stack_dir()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_dead_definitions_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dagster keeps the current instance's definitions-state storage in a context variable,
    read by every in-process definitions load. In a long pytest process it was sometimes left
    holding the storage of a disposed instance, and a later ``dg.materialize`` failed with
    "Attempted to resolve undefined DagsterInstance weakref" (seen in test_dynamo_round_trip
    and test_dynamo_cli, depending on which test files ran before in the same process; not
    reproduced alone). Each test starts with none, and a storage whose instance is gone reads
    as none. (Private Dagster modules: there is no public way to reset it.)"""
    from dagster._core.storage.defs_state import base

    current = base.DefsStateStorage.get

    def live_storage() -> base.DefsStateStorage | None:
        storage = current()
        if storage is not None and not storage.has_instance:
            return None
        if storage is not None and storage._instance_weakref() is None:  # type: ignore[misc]
            return None
        return storage

    monkeypatch.setattr(base.DefsStateStorage, "get", staticmethod(live_storage))
    with base.set_defs_state_storage(None):
        yield


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    root = stack_dir()
    stack = LocalStack(root)
    stack.up()
    saved = dict(os.environ)
    os.environ.update(stack.env())
    try:
        yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_state(local_stack: LocalStack) -> StackState:
    state = local_stack.state()
    assert state is not None
    return state


@pytest.fixture(scope="session")
def stack_env(local_stack: LocalStack) -> dict[str, str]:
    return local_stack.env()


@pytest.fixture(scope="session")
def pg_uri(stack_env: dict[str, str]) -> str:
    """The warehouse database of the local stack."""
    return stack_env["ETL_WAREHOUSE_DSN"]


@pytest.fixture
def fresh_database(stack_state: StackState) -> Iterator[str]:
    """A new empty database for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield stack_state.dsn(name)
    finally:
        with psycopg.connect(stack_state.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def unique_name() -> str:
    """A short unique lowercase name for buckets, tables and queues of one test."""
    return f"t{uuid.uuid4().hex[:12]}"
