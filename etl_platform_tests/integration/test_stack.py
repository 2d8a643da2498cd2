"""`etl-platform stack up` twice finds the running stack; `stack down` leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil


def _cli(local_dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETL_"))}
    return subprocess.run(
        [sys.executable, "-m", "etl_platform.cli", "--local-dir", str(local_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _processes_under(path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(proc)
    return found


def test_stack_up_is_idempotent_and_down_leaves_no_process(own_stack_dir):
    local_dir = own_stack_dir / "local"
    first = _cli(local_dir, "stack", "up")
    assert first.returncode == 0, first.stderr
    state_text = (local_dir / "stack.json").read_text()
    from etl_platform.local.stack import LocalStack

    state = LocalStack(local_dir).state()
    assert state is not None
    moto = psutil.Process(state.moto_pid)
    postmaster = psutil.Process(state.postgres_pid)
    children = postmaster.children(recursive=True) + moto.children(recursive=True)

    second = _cli(local_dir, "stack", "up")
    assert second.returncode == 0, second.stderr
    assert (local_dir / "stack.json").read_text() == state_text  # found, not restarted

    status = _cli(local_dir, "stack", "status")
    assert status.returncode == 0 and '"running": true' in status.stdout
    env = _cli(local_dir, "stack", "env")
    assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{state.moto_port}" in env.stdout
    assert "ETL_WAREHOUSE_DSN=" in env.stdout

    down = _cli(local_dir, "stack", "down")
    assert down.returncode == 0, down.stderr
    for proc in [moto, postmaster, *children]:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc
    assert _processes_under(local_dir) == []
    assert _cli(local_dir, "stack", "status").returncode == 1
    assert "not running" in _cli(local_dir, "stack", "env").stderr


def test_stack_down_without_a_stack_is_a_no_op(tmp_path):
    assert _cli(tmp_path / "none", "stack", "down").returncode == 0


def test_dev_serves_the_ui_and_ctrl_c_leaves_no_process(tmp_path, own_stack_dir):
    """`etl-platform dev` (behind `make dev`): stack + demo + UI; SIGINT stops all of it."""
    import json
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    local_dir = own_stack_dir / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETL_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl_platform.cli",
            "--local-dir",
            str(local_dir),
            "dev",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("the Dagster UI did not come up within 180 s")
        assert time.monotonic() - started < 90, "the UI took longer than 90 s to come up"
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        keys: set[str] = set()
        while time.monotonic() < deadline and "dynamodb/demo/data_schemas" not in keys:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=query,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as r:
                nodes = json.loads(r.read())["data"]["assetNodes"]
            keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            time.sleep(0.5)
        assert {"dynamodb/demo/data_schemas", "warehouse/demo/published"} <= keys
        tree = psutil.Process(process.pid).children(recursive=True)
        assert any("dagster" in " ".join(p.cmdline()) for p in tree)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(1)
    leftovers = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
    assert _processes_under(local_dir) == []
    assert _processes_under(tmp_path / "dagster_home") == []
