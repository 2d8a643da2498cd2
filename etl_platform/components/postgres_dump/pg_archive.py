"""pg_dump and pg_restore of directory archives, with their progress in the run log: a dump
counts the bytes pg_dump has written so far (the total is unknown until it ends); a restore
counts the tables whose data pg_restore has loaded, of the archive's data files."""

from __future__ import annotations

import re
from pathlib import Path

from etl_platform.core.scrub.archive import RestoredTables
from etl_platform.resources import PgToolsResource

from ..progress import QUIET, HasLog, StepProgress
from .dump_objects import archive_bytes

_DATA_FILE = re.compile(r"^\d+\.dat(?:\.gz)?$")  # not toc.dat


def dump_archive(
    pg_tools: PgToolsResource,
    dsn: str,
    directory: Path,
    what: str,
    *,
    setting: str,
    jobs: int = 2,
    context: HasLog = QUIET,
) -> int:
    """``pg_dump -Fd`` into ``directory`` of the database whose DSN ``setting`` holds (named
    in errors); returns the archive's bytes."""
    written = StepProgress(context, f"pg_dump of {what}", "bytes")
    with written.polling(lambda: archive_bytes(directory)):
        pg_tools.dump_directory(dsn, directory, setting=setting, jobs=jobs)
    written.done()
    return written.progress.count


def data_file_count(names: list[str]) -> int:
    """The archive's table data files (``<dump id>.dat.gz``), one per table."""
    return sum(1 for name in names if _DATA_FILE.match(name))


def restore_archive(
    pg_tools: PgToolsResource,
    dsn: str,
    directory: Path,
    what: str,
    *,
    setting: str,
    jobs: int = 2,
    single_transaction: bool = False,
    context: HasLog = QUIET,
) -> None:
    """``pg_restore`` of ``directory`` into the database whose DSN ``setting`` holds (named in
    errors; see :meth:`PgToolsResource.restore_directory`), logging the tables restored of the
    archive's total."""
    tables = data_file_count([p.name for p in directory.iterdir()])
    restored = StepProgress(context, f"pg_restore of {what}", "tables", tables)
    tracker = RestoredTables()
    pg_tools.restore_directory(
        dsn,
        directory,
        setting=setting,
        jobs=jobs,
        single_transaction=single_transaction,
        on_verbose_line=lambda line: restored.at(tracker.feed(line)),
    )
    restored.at(tables)
    restored.done()
