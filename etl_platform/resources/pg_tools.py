"""pg_dump and pg_restore, streamed to and from S3 without holding a dump in memory or on disk.

The binaries come from ``bin_dir`` when set, else from the ``pgserver`` wheel (PostgreSQL 16),
else from ``PATH``. A dump is uploaded under a ``.partial`` key and moved to its final key only
after pg_dump exits 0, so a failed or killed dump never looks like a finished one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource

from etl_platform.core.dsn import split_password
from etl_platform.core.object_store import ObjectStore
from etl_platform.core.s3_layout import s3_uri

from .aws_client import AwsAddress, naming_aws_settings

TAIL_LINES = 200


class PgToolError(RuntimeError):
    """pg_dump or pg_restore failed; the message names the setting that holds the database's
    DSN (never the DSN) and carries the tool's stderr, with the DSN blanked out."""


def _stderr_without_dsn(text: str, target: str) -> str:
    """The tool's stderr with the argv DSN blanked (libpq echoes a connection string it cannot
    parse)."""
    return text.replace(target, "<DSN>") if target else text


def _libpq_env(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN for a child's argv (no password: ``ps`` shows argv) and its environment, with
    the password as ``PGPASSWORD``."""
    safe, password = split_password(dsn)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return safe, env


def _die_with_parent() -> None:
    """In the child before exec: a SIGKILLed step must not leave a pg_restore running on (it
    would go on to commit a restore nobody is watching). Linux only; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class DumpResult:
    uri: str
    bytes: int


class PgToolsResource(ConfigurableResource):
    """Runs pg_dump/pg_restore of the configured PostgreSQL major version."""

    bin_dir: str | None = None

    def binary(self, name: str) -> str:
        if self.bin_dir:
            path = Path(self.bin_dir) / name
            if not path.exists():
                raise PgToolError(f"{name} not found in bin_dir={self.bin_dir!r}")
            return str(path)
        try:
            import pgserver

            path = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
            if path.exists():
                return str(path)
        except ImportError:
            pass
        found = shutil.which(name)
        if found is None:
            raise PgToolError(f"{name} not found: set bin_dir or put it on PATH")
        return found

    def dump_to_s3(
        self,
        dsn: str,
        store: ObjectStore,
        bucket: str,
        key: str,
        *extra_args: str,
        setting: str,
        bucket_setting: str,
    ) -> DumpResult:
        """``pg_dump -Fc`` of the database at ``dsn`` streamed to ``s3://bucket/key``;
        ``setting`` names where the DSN came from (``source_dsn_env 'ETL_SOURCE_DSN'``) and
        ``bucket_setting`` the setting holding ``bucket`` (``extract_bucket``), for errors."""
        partial = f"{key}.partial"
        target, env = _libpq_env(dsn)
        cmd = [self.binary("pg_dump"), "--format=custom", "--no-owner", *extra_args, "-d", target]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        stderr = _StderrTail(process)
        try:
            store.upload_stream(process.stdout, bucket, partial, setting=bucket_setting)  # type: ignore[arg-type]
        except BaseException:
            process.kill()  # nobody reads its stdout any more: it would block forever
            process.wait()
            with contextlib.suppress(Exception):  # the upload's error is the one to report
                store.delete_keys(bucket, [partial], setting=bucket_setting)
            raise
        rc = process.wait()
        if rc != 0:
            store.delete_keys(bucket, [partial], setting=bucket_setting)
            err = _stderr_without_dsn(stderr.text(), target)
            raise PgToolError(f"pg_dump of the database in {setting} failed (exit {rc}): {err}")
        address = AwsAddress(bucket_setting, bucket, partial)
        with naming_aws_settings(f"s3 copy to {s3_uri(bucket, key)}", None, address):
            store.client().copy({"Bucket": bucket, "Key": partial}, bucket, key)
        store.delete_keys(bucket, [partial], setting=bucket_setting)
        size = store.object_size(bucket, key, setting=bucket_setting)
        return DumpResult(uri=s3_uri(bucket, key), bytes=size)

    def restore_from_s3(
        self,
        dsn: str,
        store: ObjectStore,
        bucket: str,
        key: str,
        *,
        setting: str,
        bucket_setting: str,
        clean: bool = True,
    ) -> None:
        """``pg_restore`` of ``s3://bucket/key`` (``bucket`` held by ``bucket_setting``) into
        the database at ``dsn`` (held by ``setting``), in one transaction
        (``--single-transaction``): a failed restore leaves the target as it was."""
        target, env = _libpq_env(dsn)
        cmd = [self.binary("pg_restore"), "--no-owner", "--single-transaction", "-d", target]
        if clean:
            cmd[1:1] = ["--clean", "--if-exists"]
        process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        stderr = _StderrTail(process)
        try:
            body = store.open_stream(bucket, key, setting=bucket_setting)
            shutil.copyfileobj(body, process.stdin, length=1024 * 1024)  # type: ignore[arg-type]
        except BrokenPipeError:
            pass  # pg_restore exited early; its exit code and stderr say why
        except BaseException:
            process.kill()  # an S3 error: a half-fed restore must not commit
            raise
        finally:
            if process.stdin:
                process.stdin.close()
            rc = process.wait()
        if rc != 0:
            raise PgToolError(
                f"pg_restore of {s3_uri(bucket, key)} into the database in {setting} failed "
                f"(exit {rc}): {_stderr_without_dsn(stderr.text(), target)}"
            )

    def _run(self, cmd: list[str], env: dict[str, str], what: str, target: str = "") -> str:
        """Run a pg tool to completion; stdout as text, or PgToolError naming ``what`` (and
        never ``target``, the argv DSN)."""
        result = subprocess.run(
            cmd, capture_output=True, env=env, check=False, preexec_fn=_die_with_parent
        )
        if result.returncode != 0:
            err = _stderr_without_dsn(result.stderr.decode(errors="replace"), target)[-4000:]
            raise PgToolError(f"{what} failed (exit {result.returncode}): {err}")
        return result.stdout.decode()

    def dump_directory(
        self, dsn: str, directory: Path, *, setting: str, jobs: int = 2, level: int = 1
    ) -> None:
        """``pg_dump -Fd`` (one gzip data file per table, ``toc.dat`` for the schema) into a new
        ``directory``; large objects are left out (``-B``: no scrub rule could cover them).
        ``setting`` names where the DSN came from, for errors (``source_dsn_env 'X'``)."""
        target, env = _libpq_env(dsn)
        cmd = [
            self.binary("pg_dump"),
            "--format=directory",
            f"--jobs={jobs}",
            f"--compress={level}",
        ]
        cmd += ["--no-owner", "--no-blobs", "-f", str(directory), "-d", target]
        self._run(cmd, env, f"pg_dump of the database in {setting}", target)

    def archive_listing(self, directory: Path) -> str:
        """``pg_restore -l`` of a directory archive (needs only its ``toc.dat``)."""
        return self._run(
            [self.binary("pg_restore"), "-l", str(directory)], dict(os.environ), "pg_restore -l"
        )

    def archive_script(self, directory: Path, section: str) -> str:
        """The SQL script of one section (``pre-data``, ``data``, ``post-data``)."""
        cmd = [self.binary("pg_restore"), f"--section={section}", "--no-owner", "-f", "-"]
        return self._run(
            [*cmd, str(directory)], dict(os.environ), f"pg_restore --section={section}"
        )

    def restore_directory(
        self,
        dsn: str,
        directory: Path,
        *,
        setting: str,
        jobs: int = 2,
        single_transaction: bool = False,
        on_verbose_line: Callable[[str], None] | None = None,
    ) -> None:
        """``pg_restore`` of a directory archive into the database at ``dsn`` (held by
        ``setting``, named in errors): in parallel (``jobs``) into a fresh database, or
        ``--clean --single-transaction`` into a live one. With ``on_verbose_line`` it runs
        ``--verbose`` and passes each stderr line as it comes (progress: which table's data is
        done)."""
        target, env = _libpq_env(dsn)
        cmd = [self.binary("pg_restore"), "--no-owner", "--exit-on-error"]
        if single_transaction:
            cmd += ["--clean", "--if-exists", "--single-transaction"]
        else:
            cmd += [f"--jobs={jobs}"]
        what = f"pg_restore into the database in {setting}"
        cmd += ["-d", target, str(directory)]
        if on_verbose_line is None:
            self._run(cmd, env, what, target)
        else:
            _run_following_stderr(
                [*cmd[:1], "--verbose", *cmd[1:]], env, what, target, on_verbose_line
            )


def _run_following_stderr(
    cmd: list[str],
    env: dict[str, str],
    what: str,
    target: str,
    on_line: Callable[[str], None],
) -> None:
    """Run a pg tool that writes nothing to stdout, passing each stderr line to ``on_line`` as
    it comes; PgToolError naming ``what`` with the stderr tail (never ``target``, the argv
    DSN) when it fails."""
    process = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=_die_with_parent,
    )
    stderr = _StderrTail(process, on_line)
    rc = process.wait()
    text = _stderr_without_dsn(stderr.text(), target)
    if rc != 0:
        raise PgToolError(f"{what} failed (exit {rc}): {text}")


class _StderrTail:
    """Collects a child's stderr on a thread so a chatty child never blocks on a full pipe."""

    def __init__(
        self, process: subprocess.Popen[bytes], on_line: Callable[[str], None] | None = None
    ) -> None:
        self._chunks: deque[bytes] = deque(maxlen=TAIL_LINES)
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._chunks.append(line)
            if self._on_line is not None:
                try:
                    self._on_line(line.decode(errors="replace").rstrip("\n"))
                except Exception:  # progress must never stop the reading (the child would block)
                    self._on_line = None

    def text(self) -> str:
        self._thread.join(timeout=5)
        return b"".join(self._chunks).decode(errors="replace")[-4000:]
