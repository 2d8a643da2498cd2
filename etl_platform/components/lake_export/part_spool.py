"""Where the export step keeps Parquet parts while they are written, and the background writer.

Parts are spooled to local files (at most one part on local disk at a time, deleted once the
sink has taken it) instead of memory, because a part can be ``part_bytes`` (128 MB) large. The
writer runs on a thread of its own so that fetching and converting batches (the caller's
thread) overlaps Parquet encoding, compression and the upload (pyarrow releases the GIL); a
bounded queue limits how many converted batches wait.

A process killed while exporting (SIGKILL, OOM, a lost host) cannot delete its spool directory:
each one is named after its process (``lake-export-pidNNN-*`` in the temporary directory), and
the next export on the machine deletes those whose process is gone.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from etl_platform.core import lake

SPOOL_PREFIX = "lake-export-pid"
_END = object()
_ABORT = object()
ABORT_JOIN_SECONDS = 120


def _owner_is_gone(directory: Path) -> bool:
    pid = directory.name.removeprefix(SPOOL_PREFIX).split("-", 1)[0]
    if not pid.isdigit():
        return False  # not named by this module: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def sweep_dead_spools(parent: Path) -> int:
    """Delete the spool directories in ``parent`` whose process died without cleaning up
    (a killed export); returns how many."""
    dead = [d for d in parent.glob(f"{SPOOL_PREFIX}*") if d.is_dir() and _owner_is_gone(d)]
    for directory in dead:
        shutil.rmtree(directory, ignore_errors=True)
    return len(dead)


class SpoolFiles:
    """Part files in a local directory: ``DIR/part-NNNNN.parquet`` (a ``lake.PartFiles``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    @contextmanager
    def opened(cls, directory: str | os.PathLike[str] | None = None) -> Iterator[SpoolFiles]:
        """A spool in ``directory`` (a directory of its own, not the sink's) or in a temporary
        directory; no part file is left behind when the block ends, whatever happened."""
        own = directory is None
        if own:
            parent = Path(tempfile.gettempdir())
            sweep_dead_spools(parent)
            path = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=parent))
        else:
            path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        try:
            yield cls(path)
        finally:
            if own:
                shutil.rmtree(path, ignore_errors=True)
            else:
                for leftover in path.glob("part-*.parquet"):
                    leftover.unlink(missing_ok=True)

    def create(self, name: str) -> pa.NativeFile:
        return pa.OSFile(str(self.directory / name), "wb")

    def finished(self, name: str, file: pa.NativeFile) -> tuple[IO[bytes], Path]:
        file.close()
        path = self.directory / name
        return open(path, "rb"), path

    def discard(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)


class LocalDirectorySink:
    """Moves parts into a directory as ``part-NNNNN.parquet``; locations are the file paths."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, part: lake.FinishedPart) -> str:
        target = self.directory / part.name
        if part.path is not None:
            shutil.move(str(part.path), target)
        else:
            with open(target, "wb") as out:
                shutil.copyfileobj(part.file, out, 1024 * 1024)
        return str(target)


class _Aborted(Exception):
    """The caller stopped feeding the writer (its own error is the one that propagates)."""


def _queued(q: queue.Queue[Any]) -> Iterator[pa.RecordBatch]:
    while (item := q.get()) is not _END:
        if item is _ABORT:
            raise _Aborted
        yield item


def _put(q: queue.Queue[Any], item: Any, thread: threading.Thread, outcome: dict) -> None:
    while True:
        if "error" in outcome:
            raise outcome["error"]
        if not thread.is_alive():
            raise lake.LakeExportError("lake export writer thread stopped unexpectedly")
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _stop(q: queue.Queue[Any], thread: threading.Thread) -> None:
    while True:  # drop what is queued and wake the writer
        try:
            q.get_nowait()
        except queue.Empty:
            break
    try:
        q.put_nowait(_ABORT)
    except queue.Full:
        pass
    thread.join(timeout=ABORT_JOIN_SECONDS)  # a sink call in progress finishes first


def write_parts_in_background(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    sink: lake.PartSink,
    *,
    settings: lake.PartSettings | None = None,
    files: lake.PartFiles | None = None,
    depth: int = 4,
) -> list[lake.ExportedPart]:
    """:func:`etl_platform.core.lake.write_parts` on a writer thread, fed from this one through
    a queue of ``depth`` batches. A writer error (e.g. the sink's) is raised here; an error
    of ``batches`` stops the writer, which drops its open part."""
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["parts"] = lake.write_parts(
                _queued(q), schema, sink, settings=settings, files=files
            )
        except BaseException as exc:  # handed to the caller thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="lake-export-writer", daemon=True)
    thread.start()
    try:
        for batch in batches:
            _put(q, batch, thread, outcome)
        _put(q, _END, thread, outcome)
        thread.join()
    except BaseException:
        _stop(q, thread)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["parts"]
