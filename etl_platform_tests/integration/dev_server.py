"""`etl-platform dev` for a test module: its own stack dir, DAGSTER_HOME and free port, in its own
process group (as a terminal runs it), stopped with SIGINT (what Ctrl-C sends) and then SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DevServer:
    url: str
    process: subprocess.Popen[bytes]
    root: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dev_server(timeout_s: float = 240.0) -> DevServer:
    """Start `etl-platform dev` and return once its webserver answers (or raise with its log)."""
    # outside pytest's basetemp: see conftest.stack_dir (the pgserver user must reach its data)
    root = Path(tempfile.mkdtemp(prefix="etl_stack_ui_"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETL_"))}
    env["DAGSTER_HOME"] = str(root / "dagster_home")
    log = root / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "etl_platform.cli", "--local-dir", str(root / "local")]
            + ["dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DevServer(f"http://127.0.0.1:{port}", process, root, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:]
    server.stop()
    raise AssertionError(f"etl-platform dev did not serve {server.url}:\n{tail}")
