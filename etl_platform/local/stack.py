"""The embedded local stack: a moto server (DynamoDB, S3, SQS, Glue, SNS) and a PostgreSQL from
the ``pgserver`` wheel, both under one state directory (``.local/`` in the repo by default).

``up`` is idempotent: a second call finds the running stack through the state file and the
health of the processes it names. ``down`` stops exactly the processes recorded there (the moto
server's process group and the postmaster of our data directory) and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

DEFAULT_REGION = "us-east-1"
WAREHOUSE_DB = "warehouse"
SOURCE_DB = "source"
RESTORE_TARGET_DB = "restore_target"
DATABASES = (WAREHOUSE_DB, SOURCE_DB, RESTORE_TARGET_DB)


class StackError(RuntimeError):
    """The local stack could not be started, found or stopped; the message says which part."""


@dataclass(frozen=True)
class StackState:
    moto_pid: int
    moto_port: int
    postgres_pid: int
    postgres_data: str
    postgres_socket_dir: str

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.postgres_socket_dir}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2
        ) as response:
            return response.status == 200
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    first = pidfile.read_text().splitlines()[:1]
    return int(first[0]) if first and first[0].strip().isdigit() else None


class LocalStack:
    """Start, find, report and stop the local stack rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.state_file = self.root / "stack.json"
        self.pgdata = self.root / "postgres"
        self.moto_log = self.root / "moto.log"

    # -- state ---------------------------------------------------------------------------
    def state(self) -> StackState | None:
        if not self.state_file.exists():
            return None
        return StackState(**json.loads(self.state_file.read_text()))

    def _save(self, state: StackState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(state), indent=2))

    def status(self) -> dict[str, object]:
        """Health of each part; ``running`` only when both answer."""
        state = self.state()
        if state is None:
            return {"running": False, "moto": "not started", "postgres": "not started"}
        moto_ok = _is_our_moto(state.moto_pid, state.moto_port) and _moto_healthy(state.moto_port)
        pg_ok = _postmaster_pid(Path(state.postgres_data)) == state.postgres_pid and _pid_alive(
            state.postgres_pid
        )
        return {
            "running": moto_ok and pg_ok,
            "moto": f"{'up' if moto_ok else 'down'} {state.endpoint_url} (pid {state.moto_pid})",
            "postgres": f"{'up' if pg_ok else 'down'} {state.postgres_socket_dir} "
            f"(pid {state.postgres_pid})",
        }

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3, psycopg and the platform at this stack."""
        state = self.state()
        if state is None:
            raise StackError(f"the local stack under {self.root} is not running: run `stack up`")
        return {
            "AWS_ENDPOINT_URL": state.endpoint_url,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "AWS_REGION": DEFAULT_REGION,
            # moto accepts any credentials; these are placeholders, not secrets.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "ETL_WAREHOUSE_DIALECT": "postgres",
            "ETL_WAREHOUSE_DSN": state.dsn(WAREHOUSE_DB),
            "ETL_SOURCE_DSN": state.dsn(SOURCE_DB),
            "ETL_RESTORE_TARGET_DSN": state.dsn(RESTORE_TARGET_DB),
            "ETL_SCRUB_HMAC_KEY": self.scrub_key(),
            # the demo alert topic (`demo seed` creates it in moto's default account)
            "ETL_ALERT_TOPIC_ARN": f"arn:aws:sns:{DEFAULT_REGION}:123456789012:etl-alerts",
        }

    def scrub_key(self) -> str:
        """The demo's pseudonymization key: random per stack, kept (0600) beside its data, so
        pseudonyms are stable across runs of one local stack and no key lives in the repo."""
        path = self.root / "scrub_hmac_key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        return path.read_text().strip()

    # -- lifecycle -----------------------------------------------------------------------
    def up(self, timeout_s: float = 60.0) -> StackState:
        """Start what is not running; return the state of the running stack."""
        self.root.mkdir(parents=True, exist_ok=True)
        existing = self.state()
        if existing is not None and self.status()["running"]:
            return existing
        if existing is not None:
            # A half-dead stack (one part crashed): stop what is left, then start afresh.
            self.down()
        moto_pid, moto_port = self._start_moto(timeout_s)
        try:
            pg_pid, socket_dir = self._start_postgres()
        except Exception:
            _stop_process_group(moto_pid)
            raise
        state = StackState(
            moto_pid=moto_pid,
            moto_port=moto_port,
            postgres_pid=pg_pid,
            postgres_data=str(self.pgdata),
            postgres_socket_dir=socket_dir,
        )
        self._save(state)
        self._ensure_databases(state)
        return state

    def down(self) -> None:
        """Stop the processes recorded in the state file, and only those."""
        state = self.state()
        if state is None:
            return
        if _is_our_moto(state.moto_pid, state.moto_port):
            _stop_process_group(state.moto_pid)
        pg_pid = _postmaster_pid(Path(state.postgres_data))
        if pg_pid is not None and pg_pid == state.postgres_pid and _pid_alive(pg_pid):
            # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
            os.kill(pg_pid, signal.SIGINT)
            _wait_gone(pg_pid, 30.0)
        self.state_file.unlink(missing_ok=True)

    def _start_moto(self, timeout_s: float) -> tuple[int, int]:
        port = _free_port()
        log = open(self.moto_log, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(
                    f"moto server exited with code {process.returncode}; see {self.moto_log}"
                )
            if _moto_healthy(port):
                return process.pid, port
            time.sleep(0.2)
        _stop_process_group(process.pid)
        raise StackError(f"moto server did not answer on port {port} within {timeout_s}s")

    def _start_postgres(self) -> tuple[int, str]:
        import pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        try:
            # cleanup_mode=None: the server outlives this process; `down` stops it.
            server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise StackError(
                f"embedded PostgreSQL failed to start in {self.pgdata}: {exc}; "
                f"see {self.pgdata / 'log'}"
            ) from exc
        info = server.get_postmaster_info()
        return int(info.pid), str(info.socket_dir)

    def _ensure_databases(self, state: StackState) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(state.dsn("postgres"), autocommit=True) as conn:
            existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _is_our_moto(pid: int, port: int) -> bool:
    """The recorded PID is still our moto server (after a reboot it may be anything else)."""
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return "moto.server" in cmdline and str(port) in cmdline


def _stop_process_group(pid: int, timeout_s: float = 10.0) -> None:
    if not _pid_alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait_gone(pid, timeout_s):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_gone(pid, timeout_s)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    try:
        process.wait(timeout_s)
        return True
    except psutil.TimeoutExpired:
        return False


def default_root() -> Path:
    """``ETL_LOCAL_DIR`` or ``.local/`` in the current directory (the repo root under make)."""
    return Path(os.environ.get("ETL_LOCAL_DIR", ".local"))
