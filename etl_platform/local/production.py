"""The production Dagster instance (``deploy/dagster.yaml``) run on the local stack: the same
storage, queue, pools, retries and monitoring, with only the run launcher swapped for Dagster's
default (each run a local process instead of an ECS task) and storage in a local PostgreSQL
database. Used by the production-config test and the run-overhead benchmark.

The code server (``dagster api grpc``), the daemon and the webserver each start in a process
group of their own and are stopped by group, so nothing they spawn (run workers) outlives them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RUN_LAUNCHER = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
CODE_LOCATION = "etl_platform"


def sqlalchemy_url(libpq_dsn: str) -> str:
    """``postgresql://...`` (the stack's DSNs) as the ``postgresql+psycopg2://`` URL Dagster's
    Postgres storage needs (a plain URL picks psycopg 3 under SQLAlchemy 2.1)."""
    scheme, sep, rest = libpq_dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ValueError("the Dagster storage DSN must be a postgresql:// URL")
    return f"postgresql+psycopg2://{rest}"


def write_instance_config(deploy_yaml: Path, home: Path) -> dict[str, Any]:
    """``home/dagster.yaml``: ``deploy_yaml`` with its ``run_launcher`` block replaced by the
    default launcher and nothing else changed."""
    config = yaml.safe_load(deploy_yaml.read_text())
    config["run_launcher"] = dict(DEFAULT_RUN_LAUNCHER)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class InstanceProcesses:
    """Code server, daemon and webserver of one instance home; ``stop()`` ends exactly them."""

    home: Path
    cwd: Path
    env: dict[str, str]
    grpc_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.home / "workspace.yaml"

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.home / f"{name}.log", "wb")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def start(self, module: str = "etl_platform.definitions", timeout_s: float = 180) -> None:
        server = {"host": "127.0.0.1", "port": self.grpc_port, "location_name": CODE_LOCATION}
        self.workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
        self._start(
            "grpc",
            [_bin("dagster"), "api", "grpc", "-m", module, "-h", "127.0.0.1"]
            + ["-p", str(self.grpc_port)],
        )
        self._wait_for(lambda: _port_open(self.grpc_port), "grpc", timeout_s)
        self._start("daemon", [_bin("dagster-daemon"), "run", "-w", str(self.workspace)])
        self._start(
            "webserver",
            [_bin("dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1"]
            + ["-p", str(self.web_port)],
        )
        self._wait_for(self._webserver_up, "webserver", timeout_s)

    def _webserver_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/server_info", timeout=2):
                return True
        except OSError:
            return False

    def _wait_for(self, ready: Any, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            for pname, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{pname} exited: {self.log_tail(pname)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not up after {timeout_s}s: {self.log_tail(name)}")
            time.sleep(0.5)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop_process_group(process)
        self.processes.clear()

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/graphql",
            data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def launch_backfill(
        self,
        asset_paths: Iterable[str],
        partitions: list[str],
        title: str,
        run_config: Mapping[str, Any] | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "assetSelection": [{"path": p.split("/")} for p in asset_paths],
            "partitionNames": partitions,
            "title": title,
        }
        if run_config is not None:
            params["runConfigData"] = dict(run_config)
        launched = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout_s: float = 420) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            data = self.graphql(BACKFILL_STATUS, {"id": backfill_id})
            backfill = data["partitionBackfillOrError"]
            if backfill.get("status") not in ("REQUESTED", "CANCELING", "FAILING"):
                return backfill
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {backfill.get('status')}")
            time.sleep(1)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group, then SIGKILL it if it does not end."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } runs { id status } }
    ... on PythonError { message }
  }
}
"""
