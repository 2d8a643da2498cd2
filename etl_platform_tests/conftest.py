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
def no_leftover_definitions_state() -> Iterator[None]:
    """Each test starts with no current Dagster definitions-state storage. An entered
    ``DagsterInstance`` puts its storage in a context variable; instances left in another
    order than entered (one test's fixtures) left it pointing at a disposed instance, and a
    later test's in-process definitions load failed with "Attempted to resolve undefined
    DagsterInstance weakref". (A private module: Dagster exports no public way to reset it.)"""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
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
