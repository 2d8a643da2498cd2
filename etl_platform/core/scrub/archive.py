"""What a pg_dump directory archive holds, read from pg_restore's own output (no TOC parsing
of our own): ``pg_restore -l`` names each TABLE DATA entry and its dump id (the data file is
``<dump id>.dat.gz``), the data-section script gives each table's COPY column list in the same
order, and the pre-data script gives the column types and which partitioned table each
partition belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LIST_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.+)$")
_COPY = re.compile(r"^COPY (.+?) \((.*)\) FROM stdin;$", re.MULTILINE)
_CREATE_TABLE = re.compile(r"^CREATE (?:UNLOGGED )?TABLE (.+?) \(\n(.*?)\n\)", re.M | re.S)
#: One SQL identifier as pg_dump prints it: quoted (``"a ""b"""``) or bare.
IDENT = r'(?:"(?:[^"]|"")*"|[^\s",.()]+)'
#: ``schema.table``, each part an :data:`IDENT`.
QUALIFIED_NAME = rf"{IDENT}\.{IDENT}"
_QUALIFIED = re.compile(rf"^({IDENT})\.({IDENT})$")
_ATTACH = re.compile(
    rf"^ALTER TABLE ONLY ({QUALIFIED_NAME}) ATTACH PARTITION ({QUALIFIED_NAME}) ", re.M
)
_NOT_NULL_END = re.compile(r" NOT NULL,?$")
_COLUMN_LINE = re.compile(rf"^\s+({IDENT}) (.+?)(?: NOT NULL| DEFAULT .*| GENERATED .*)*,?$")
_NOT_TEXT = (
    "smallint", "integer", "bigint", "int", "numeric", "decimal", "real", "double precision",
    "float", "boolean", "bool", "date", "time", "interval", "uuid", "bytea", "oid", "money",
    "serial", "bigserial", "smallserial", "inet", "cidr", "macaddr", "point", "line", "lseg",
    "box", "path", "polygon", "circle", "numrange", "tsrange", "tstzrange", "daterange",
)  # fmt: skip
DATA_DESCRIPTIONS = ("TABLE DATA", "BLOBS", "BLOB DATA", "LARGE OBJECT", "SEQUENCE SET")


class ArchiveError(ValueError):
    """The archive's listing and its scripts do not agree; the message names the entry."""


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    description: str
    rest: str  # "schema name owner" as pg_restore -l prints it

    @property
    def data_file(self) -> str:
        return f"{self.dump_id}.dat.gz"


@dataclass(frozen=True)
class DumpTable:
    """One table's data in the archive: its qualified name, data file and COPY columns."""

    qualified: str
    dump_id: int
    columns: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict, compare=False)
    partition_of: tuple[str, ...] = ()  # the partitioned tables above it, nearest first
    not_null: frozenset[str] = frozenset()  # columns declared NOT NULL

    @property
    def data_file(self) -> str:
        return f"{self.dump_id}.dat.gz"

    def is_text(self, column: str) -> bool:
        """Whether the residual scan looks at the column's values: every type but those that
        cannot spell an e-mail, phone or name (numbers, booleans, dates and times, uuids,
        binary, network addresses, geometry, ranges of those). Domains, enums, arrays, text search
        vectors and unknown types are scanned: fail closed."""
        kind = self.types.get(column, "text").lower()
        return kind.endswith("[]") or not kind.startswith(_NOT_TEXT)


def unquote_ident(ident: str) -> str:
    if ident.startswith('"') and ident.endswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident


def split_qualified(name: str) -> str:
    """``public."Weird Name"`` → ``public.Weird Name``."""
    match = _QUALIFIED.match(name.strip())
    if not match:
        raise ArchiveError(f"not a schema-qualified table name: {name!r}")
    return f"{unquote_ident(match.group(1))}.{unquote_ident(match.group(2))}"


def split_columns(column_list: str) -> tuple[str, ...]:
    return tuple(unquote_ident(c) for c in re.findall(IDENT, column_list))


def parse_toc_list(listing: str) -> list[TocEntry]:
    """``pg_restore -l`` output → its entries (comments skipped)."""
    entries = []
    for line in listing.splitlines():
        if not line or line.startswith(";"):
            continue
        match = _LIST_LINE.match(line)
        if not match:
            raise ArchiveError(f"unexpected pg_restore -l line: {line!r}")
        body = match.group(4)
        description = next((d for d in DATA_DESCRIPTIONS if body.startswith(d + " ")), None)
        if description is None:
            description = body.split(" ", 1)[0]
        entries.append(TocEntry(int(match.group(1)), description, body[len(description) + 1 :]))
    return entries


def parse_copy_statements(data_script: str) -> list[tuple[str, tuple[str, ...]]]:
    """The data-section script → ``(qualified table, columns)`` per COPY, in order."""
    return [
        (split_qualified(m.group(1)), split_columns(m.group(2)))
        for m in _COPY.finditer(data_script)
    ]


def _create_tables(schema_script: str) -> dict[str, list[tuple[str, str, bool]]]:
    """The pre-data script's CREATE TABLEs → ``{table: [(column, type, NOT NULL), ...]}``."""
    tables: dict[str, list[tuple[str, str, bool]]] = {}
    for match in _CREATE_TABLE.finditer(schema_script):
        columns = []
        for line in match.group(2).splitlines():
            column = _COLUMN_LINE.match(line)
            if column and not line.strip().startswith(("CONSTRAINT", "--")):
                not_null = bool(_NOT_NULL_END.search(line))
                columns.append((unquote_ident(column.group(1)), column.group(2).strip(), not_null))
        tables[split_qualified(match.group(1))] = columns
    return tables


def parse_partition_parents(schema_script: str) -> dict[str, str]:
    """The pre-data script → ``{partition: its partitioned table}``. pg_dump writes each
    partition as a table of its own, holding its own rows, and attaches it afterwards:
    ``ALTER TABLE ONLY parent ATTACH PARTITION child FOR VALUES ...`` (or ``DEFAULT``)."""
    return {
        split_qualified(m.group(2)): split_qualified(m.group(1))
        for m in _ATTACH.finditer(schema_script)
    }


def _ancestors(table: str, parents: dict[str, str]) -> tuple[str, ...]:
    chain: list[str] = []
    while (table := parents.get(table, "")) and table not in chain:
        chain.append(table)
    return tuple(chain)


def dump_tables(listing: str, data_script: str, schema_script: str = "") -> list[DumpTable]:
    """Pair each TABLE DATA entry with its COPY statement (both in TOC order). Large objects
    fail: their contents are not table columns and no rule can cover them."""
    entries = parse_toc_list(listing)
    blobs = [e for e in entries if e.description in ("BLOBS", "BLOB DATA", "LARGE OBJECT")]
    if blobs:
        raise ArchiveError("the dump holds large objects, which no scrub rule covers: dump with -B")
    data_entries = [e for e in entries if e.description == "TABLE DATA"]
    copies = parse_copy_statements(data_script)
    if len(copies) != len(data_entries):
        raise ArchiveError(
            f"{len(data_entries)} TABLE DATA entries but {len(copies)} COPY statements"
        )
    created = _create_tables(schema_script)
    parents = parse_partition_parents(schema_script)
    tables = []
    for entry, (qualified, columns) in zip(data_entries, copies, strict=True):
        schema, _, name = qualified.partition(".")
        if not entry.rest.startswith(f"{schema} {name}"):
            raise ArchiveError(f"TOC entry {entry.dump_id} ({entry.rest}) is not {qualified}")
        declared = created.get(qualified, [])
        types = {column: kind for column, kind, _ in declared}
        not_null = frozenset(column for column, _, is_not_null in declared if is_not_null)
        tables.append(
            DumpTable(
                qualified, entry.dump_id, columns, types, _ancestors(qualified, parents), not_null
            )
        )
    return tables


_DATA_STARTED = re.compile(r'^pg_restore: processing data for table "')
_DATA_FINISHED = re.compile(r"^pg_restore: finished item \d+ TABLE DATA ")
_PARALLEL = re.compile(r"^pg_restore: (?:entering main parallel loop|launching item )")


@dataclass
class RestoredTables:
    """How many tables' data ``pg_restore --verbose`` has finished loading, from its stderr
    lines. A parallel restore (``--jobs``) says ``finished item N TABLE DATA``; a serial one
    only says when a table's data starts, so a table counts as done when the next one starts
    (the last when pg_restore exits)."""

    started: int = 0
    finished: int = 0
    parallel: bool = False

    def feed(self, line: str) -> int:
        """Take one stderr line; returns the tables done so far."""
        if _PARALLEL.match(line):
            self.parallel = True
        elif _DATA_STARTED.match(line):
            self.started += 1
        elif _DATA_FINISHED.match(line):
            self.finished += 1
        return self.done

    @property
    def done(self) -> int:
        return self.finished if self.parallel else max(self.started - 1, 0)
