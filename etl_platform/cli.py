"""``etl-platform``: the local stack, the demo world, and the all-in-one dev command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from etl_platform.local.stack import LocalStack, StackError, default_root


def _stack(args: argparse.Namespace) -> LocalStack:
    return LocalStack(Path(args.local_dir) if args.local_dir else default_root())


def cmd_stack(args: argparse.Namespace) -> int:
    stack = _stack(args)
    if args.action == "up":
        state = stack.up()
        print(f"stack up: moto {state.endpoint_url}, postgres {state.postgres_socket_dir}")
    elif args.action == "down":
        stack.down()
        print("stack down")
    elif args.action == "status":
        status = stack.status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 1
    elif args.action == "env":
        for name, value in stack.env().items():
            print(f"export {name}={value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    stack = _stack(args)
    os.environ.update(stack.env())
    if args.action == "run":
        from dataclasses import asdict

        from etl_platform.local.demo_runs import run_demo_world

        requests = run_demo_world(args.url, args.date, wait_s=10)
        print(json.dumps(asdict(requests), indent=2))
        print(f"follow the runs on {args.url}/runs and the backfill on {args.url}/runs/b/")
        return 0
    from etl_platform.local.demo import seed_demo_world

    summary = seed_demo_world(force=args.force)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _start_demo_runs(url: str) -> None:
    """In the background, once the UI answers: the demo day of every pipeline through the
    daemon (``etl-platform demo run``); a failure is printed, the UI keeps running."""
    import threading

    def send() -> None:
        from etl_platform.local.demo_runs import DemoRunError, run_demo_world

        try:
            requests = run_demo_world(url, wait_s=300)
        except (DemoRunError, OSError) as exc:
            print(f"etl-platform dev: the demo runs were not launched: {exc}", file=sys.stderr)
            return
        print(f"demo day {requests.day} requested: runs on {url}/runs", flush=True)

    threading.Thread(target=send, name="demo-runs", daemon=True).start()


def _set_local_pool_limits(dagster_home: Path) -> None:
    import dagster as dg

    from etl_platform.components.pools import set_shared_pool_limits

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        set_shared_pool_limits(instance)


REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def local_dagster_home(stack_root: Path, user_home: str | None) -> Path:
    """The ``DAGSTER_HOME`` of ``etl-platform dev``. Ours (``<stack>/dagster_home``) gets the
    repository's ``dagster.yaml`` at every start, so a changed setting (a pool or run-monitoring
    limit) reaches developers who started before it changed. A ``DAGSTER_HOME`` the user set is
    theirs: its ``dagster.yaml`` is created from the repository's only when it has none."""
    home = Path(user_home or stack_root / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if REPO_DAGSTER_YAML.exists() and (not user_home or not config.exists()):
        config.write_text(REPO_DAGSTER_YAML.read_text())
    return home


def cmd_dev(args: argparse.Namespace) -> int:
    """Stack up, seed if empty, run the Dagster UI; Ctrl-C stops the UI and the stack."""
    from etl_platform.local.demo import seed_demo_world

    stack = _stack(args)
    stack.up()
    os.environ.update(stack.env())
    seed_demo_world(force=False)
    dagster_home = local_dagster_home(stack.root, os.environ.get("DAGSTER_HOME"))
    _set_local_pool_limits(dagster_home)
    # MALLOC_ARENA_MAX: as in the image (docs/deploy.md): runs and the code server reuse freed
    # memory across their threads instead of keeping it per thread.
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, "DAGSTER_HOME": str(dagster_home)}
    # Its own process group: `dagster dev` ignores signals from a script and leaves children
    # running when killed alone, so the whole group is stopped.
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            args.host,
            "-p",
            str(args.port),
        ],
        env=env,
        start_new_session=True,
    )
    print(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it and the stack)")
    if args.demo_runs:
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        _start_demo_runs(f"http://{host}:{args.port}")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and ui.poll() is None:
            time.sleep(0.5)
    finally:
        _stop_group(ui)
        stack.down()
        print("stopped the Dagster UI and the local stack")
    return 0


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, give it a few seconds, then SIGKILL whatever is left in it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(8)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etl-platform", description=__doc__)
    parser.add_argument("--local-dir", help="stack state directory (default .local/)")
    sub = parser.add_subparsers(dest="command", required=True)
    stack = sub.add_parser("stack", help="the embedded local stack")
    stack.add_argument("action", choices=["up", "down", "status", "env"])
    stack.set_defaults(func=cmd_stack)
    demo = sub.add_parser("demo", help="the demo world on the local stack")
    demo.add_argument("action", choices=["seed", "run"], help="seed the world, or run its day")
    demo.add_argument("--force", action="store_true", help="seed even if already seeded")
    demo.add_argument("--url", default="http://127.0.0.1:3000", help="run: the Dagster UI")
    demo.add_argument("--date", help="run: the day to materialize (default: yesterday, UTC)")
    demo.set_defaults(func=cmd_demo)
    dev = sub.add_parser("dev", help="stack + demo + Dagster UI; Ctrl-C stops everything")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument(
        "--no-demo-runs",
        dest="demo_runs",
        action="store_false",
        help="do not materialize the demo day in the background",
    )
    dev.set_defaults(func=cmd_dev)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StackError as exc:
        print(f"etl-platform: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
