"""Publishing: the atomic schema swap and its rollback, the dependent-views guard, the
publish lock and the publish marker.

The swap renames schemas in one transaction; see :func:`swap_statements` for what happens to
views. Execute these statements *without* a params argument unless they take ``%s``: when
params are given (even ``()``), psycopg reads a ``%`` inside a quoted identifier as a
placeholder and fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from psycopg import sql

from etl_platform.core.table_spec import ColumnKind, ColumnSpec

from .ddl import (
    LOCK_SCHEMA_SUFFIX,
    check_published,
    column_type,
    create_schema,
    drop_owned_schema,
    previous_schema_name,
    swap_schema_name,
)
from .dialect import Dialect, PublishLock, parse_dialect
from .identifiers import checked_identifier, identifier, qualified_name, require_folded

__all__ = [
    "PUBLISH_LOCK_TABLE",
    "PUBLISH_MARKER_TABLE",
    "advisory_lock",
    "advisory_lock_key",
    "create_publish_marker",
    "dependent_views_query",
    "GRANTABLE_PRIVILEGES",
    "grant_statements",
    "insert_publish_marker",
    "lock_table_setup_statements",
    "lock_table_statements",
    "publish_marker_exists_query",
    "publish_marker_query",
    "rollback_statements",
    "swap_statements",
]


# --------------------------------------------------------------------------------------------
# atomic swap and rollback
# --------------------------------------------------------------------------------------------


def _rename_schema(dialect: Dialect | str, old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
        identifier(dialect, old), identifier(dialect, new)
    )


def swap_statements(
    dialect: Dialect | str, published: str, new: str, *, previous: str | None = None
) -> list[sql.Composed]:
    """Statements that put schema ``new`` in place of ``published`` and keep the replaced
    version as ``previous`` (default ``<published>__previous``). The caller runs them in ONE
    transaction (schema DDL is transactional on PostgreSQL; Redshift's ``ALTER SCHEMA`` page
    suggests exactly this rename-to-keep-a-backup and lists no transaction-block restriction,
    not verified against a cluster here; never ``ALTER TABLE APPEND``, which commits by itself):

    1. ``DROP SCHEMA IF EXISTS previous CASCADE`` — the copy before last;
    2. ``CREATE SCHEMA IF NOT EXISTS published`` — so step 3 needs no existence test (on the
       first publish, ``previous`` becomes an empty schema and rollback restores "empty");
    3. ``ALTER SCHEMA published RENAME TO previous``;
    4. ``ALTER SCHEMA new RENAME TO published``.

    Readers resolve ``published.t`` either before or after the commit, so they see one whole
    version, never an empty or half-loaded one (tested against PostgreSQL with readers running
    through 20 swaps). Two limits, both from PostgreSQL resolving names against the latest
    catalog rather than the query's snapshot: one statement reading *several* published tables
    while a swap commits may resolve them in two adjacent versions (each complete); and a
    statement whose snapshot predates the new version's data commit but whose name lookup
    happens after the swap would see that table empty. The second needs one statement to stall
    between snapshot and parse for longer than centralize + checks take, so it is not
    reachable in practice.

    Views: a PostgreSQL view (and a regular Redshift view) binds to tables by OID, not by name.
    A view on ``published.t`` therefore *follows the rename*: after the swap it reads
    ``previous.t`` (stale data), and the next swap's ``DROP ... CASCADE`` of ``previous`` would
    silently drop it — the old ETL's defect. CASCADE is only safe when nothing outside
    ``previous`` depends on it: run :func:`dependent_views_query` for ``previous`` first in the
    same transaction and abort (naming the views) if it returns rows. Redshift late-binding
    views (``WITH NO SCHEMA BINDING``) resolve names at query time and follow the swap
    correctly; on PostgreSQL, consumers should query the published tables by name or have their
    views recreated after each publish. Set a ``lock_timeout`` (PostgreSQL) for the swap: the
    drop waits for queries still reading ``previous``.
    """
    dialect = parse_dialect(dialect)
    check_published(dialect, published)
    previous = previous or previous_schema_name(published)
    checked_identifier(dialect, new, "new schema name")
    if len({published, new, previous}) != 3:
        raise ValueError(
            f"swap needs three distinct schemas, got published={published!r}, new={new!r}, "
            f"previous={previous!r}"
        )
    return [
        drop_owned_schema(dialect, previous),
        create_schema(dialect, published),
        _rename_schema(dialect, published, previous),
        _rename_schema(dialect, new, published),
    ]


def rollback_statements(
    dialect: Dialect | str, published: str, *, previous: str | None = None
) -> list[sql.Composed]:
    """The inverse swap, for ONE transaction: ``published`` ↔ ``previous`` through a temporary
    name ``<published>__swap``. Running it twice restores the original state (roll forward).
    Fails (nothing changed) when ``previous`` does not exist. Views follow their tables' OIDs
    here too (see :func:`swap_statements`)."""
    dialect = parse_dialect(dialect)
    check_published(dialect, published)
    previous = previous or previous_schema_name(published)
    temp = swap_schema_name(published)
    checked_identifier(dialect, temp, "derived schema name")
    if previous in (published, temp):
        raise ValueError(f"rollback: previous schema {previous!r} clashes with {published!r}")
    return [
        _rename_schema(dialect, published, temp),
        _rename_schema(dialect, previous, published),
        _rename_schema(dialect, temp, previous),
    ]


def dependent_views_query(dialect: Dialect | str, schema: str) -> sql.Composed:
    """Views *outside* ``schema`` that depend on relations inside it, as rows
    ``(view_schema, view_name, table_schema, table_name)``. Empty means ``DROP SCHEMA ...
    CASCADE`` of ``schema`` drops nothing else. The schema name is a parameter (``%s``):
    execute with ``(schema,)``; a name the dialect would fold (upper case on Redshift) is
    refused, since the catalog holds the folded name. Uses ``pg_depend``/``pg_rewrite``,
    present in both dialects' catalogs (checked on PostgreSQL; Redshift late-binding views
    record no dependency and are never affected)."""
    dialect = parse_dialect(dialect)
    require_folded(dialect, schema, "schema name")
    return sql.SQL(
        "SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name, "
        "tn.nspname AS table_schema, t.relname AS table_name "
        "FROM pg_catalog.pg_depend AS d "
        "JOIN pg_catalog.pg_rewrite AS r ON r.oid = d.objid "
        "JOIN pg_catalog.pg_class AS v ON v.oid = r.ev_class "
        "JOIN pg_catalog.pg_namespace AS vn ON vn.oid = v.relnamespace "
        "JOIN pg_catalog.pg_class AS t ON t.oid = d.refobjid "
        "JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.relnamespace "
        "WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass "
        "AND d.refclassid = 'pg_catalog.pg_class'::regclass "
        "AND tn.nspname = %s AND vn.nspname <> tn.nspname "
        "ORDER BY 1, 2, 3, 4"
    ).format()


# --------------------------------------------------------------------------------------------
# grants: renaming a schema keeps its grants on the old (now __previous) schema
# --------------------------------------------------------------------------------------------

#: table privileges both engines grant (PostgreSQL GRANT; Redshift GRANT, r_GRANT.html)
GRANTABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES", "TRUNCATE"})


def grant_statements(
    dialect: Dialect | str, schema: str, grants: Mapping[str, Sequence[str]]
) -> list[sql.Composed]:
    """``GRANT USAGE ON SCHEMA schema`` and ``GRANT <privileges> ON ALL TABLES IN SCHEMA
    schema`` to each role of ``grants`` (role → table privileges), for the swap transaction:
    grants bind to the schema and tables (by OID), not to the name, so the freshly built
    version gets them before it is renamed into place. Redshift grants to a role with
    ``TO ROLE name``; PostgreSQL's roles are plain names. Privileges outside
    :data:`GRANTABLE_PRIVILEGES` and invalid role names raise ``ValueError`` naming them."""
    dialect = parse_dialect(dialect)
    target = identifier(dialect, schema)
    statements = []
    for role, privileges in sorted(grants.items()):
        grantee = sql.SQL(f"{dialect.grantee_keyword} " if dialect.grantee_keyword else "")
        grantee += identifier(dialect, require_folded(dialect, role, "grants role name"))
        wanted = sorted({p.upper() for p in privileges})
        unknown = [p for p in wanted if p not in GRANTABLE_PRIVILEGES]
        if unknown or not wanted:
            raise ValueError(
                f"grants of role {role!r}: {unknown or 'no privileges'}; use some of "
                f"{sorted(GRANTABLE_PRIVILEGES)}"
            )
        statements += [
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(target, grantee),
            sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in wanted), target, grantee
            ),
        ]
    return statements


# --------------------------------------------------------------------------------------------
# serializing publishes
# --------------------------------------------------------------------------------------------


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` naming what is serialized."""
    digest = hashlib.blake2b(f"etl_platform:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock(dialect: Dialect | str, *, wait: bool) -> sql.SQL:
    """``SELECT pg_try_advisory_lock(%s)`` (returns whether it was taken) or, with ``wait``,
    ``SELECT pg_advisory_lock(%s)``; execute with ``(advisory_lock_key(name),)``. Session
    locks: released when the connection closes, or by the server when the client dies.
    Only for a dialect whose :attr:`~Dialect.publish_lock` is an advisory lock (PostgreSQL
    only: Redshift has no advisory locks)."""
    dialect = parse_dialect(dialect)
    if dialect.publish_lock is not PublishLock.ADVISORY_LOCK:
        raise ValueError(
            f"advisory locks exist on PostgreSQL only; the {dialect.name} dialect's publish "
            f"lock is {dialect.publish_lock.value!r}"
        )
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    return sql.SQL("SELECT {}(%s)").format(sql.SQL(function))


#: The table a :attr:`PublishLock.LOCK_TABLE` publish locks.
PUBLISH_LOCK_TABLE = "_etl_publish_lock"


def _lock_table(dialect: Dialect, schema: str) -> sql.Identifier:
    require_folded(dialect, schema, "publish lock schema name")
    if not schema.endswith(LOCK_SCHEMA_SUFFIX):
        raise ValueError(
            f"publish lock schema {schema!r} is not a lock schema (publish_lock_schema_name of "
            "the target): a lock table in a schema the swap renames locks nothing"
        )
    return qualified_name(dialect, schema, PUBLISH_LOCK_TABLE)


def lock_table_setup_statements(dialect: Dialect | str, schema: str) -> list[sql.Composed]:
    """``CREATE SCHEMA IF NOT EXISTS`` the lock schema and ``CREATE TABLE IF NOT EXISTS``
    ``<schema>._etl_publish_lock``: run and COMMIT them before :func:`lock_table_statements`
    (idempotent; two first-ever publishes of one target racing here may see one of them fail
    with a duplicate-name error: ``WarehouseResource.create_if_missing`` runs them again).
    ``schema`` is ``publish_lock_schema_name(target)``, a schema no swap renames."""
    dialect = parse_dialect(dialect)
    table = _lock_table(dialect, schema)
    return [
        create_schema(dialect, schema),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (locked_by {})").format(
            table, column_type(dialect, ColumnSpec("locked_by", ColumnKind.TEXT))
        ),
    ]


def lock_table_statements(dialect: Dialect | str, schema: str) -> list[sql.Composed]:
    """The publish lock of a dialect whose :attr:`~Dialect.publish_lock` is a lock table
    (Redshift, which has no advisory locks): ``LOCK TABLE <schema>._etl_publish_lock``.

    Redshift's ``LOCK`` takes an exclusive lock held until the transaction ends
    (https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html); PostgreSQL's ``LOCK TABLE``
    without a mode is ``ACCESS EXCLUSIVE``, the same. Run it on a connection of its own, in a
    transaction kept open for the whole publish or rollback (centralize, checks and swap are
    several transactions on the working connection), and end that transaction (commit or
    close) when done: a second publish of the same target waits in its ``LOCK`` until then
    (on Redshift up to its ``statement_timeout``; there is no ``lock_timeout``). Create the
    table first with :func:`lock_table_setup_statements`."""
    dialect = parse_dialect(dialect)
    return [sql.SQL("LOCK TABLE {}").format(_lock_table(dialect, schema))]


# --------------------------------------------------------------------------------------------
# publish marker: which partition a published schema holds, travelling with it through swaps
# --------------------------------------------------------------------------------------------

PUBLISH_MARKER_TABLE = "_etl_publish"


def create_publish_marker(dialect: Dialect | str, schema: str) -> list[sql.Composed]:
    """``schema._etl_publish``: one row naming the partition date, the data-schema fingerprint
    and the run that published the schema. It is renamed with the schema, so the published,
    previous and new versions each say what they hold."""
    dialect = parse_dialect(dialect)
    table = qualified_name(dialect, schema, PUBLISH_MARKER_TABLE)
    return [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL(
            "CREATE TABLE {} (partition_date date NOT NULL, data_schema_fingerprint {} NOT NULL, "
            "run_id {} NOT NULL, published_at timestamptz NOT NULL)"
        ).format(
            table,
            column_type(dialect, ColumnSpec("f", ColumnKind.TEXT)),
            column_type(dialect, ColumnSpec("r", ColumnKind.TEXT)),
        ),
    ]


def insert_publish_marker(dialect: Dialect | str, schema: str) -> sql.Composed:
    """Insert the marker row; execute with ``(partition_date, fingerprint, run_id)``."""
    return sql.SQL(
        "INSERT INTO {} (partition_date, data_schema_fingerprint, run_id, published_at) "
        "VALUES (%s, %s, %s, CURRENT_TIMESTAMP)"
    ).format(qualified_name(parse_dialect(dialect), schema, PUBLISH_MARKER_TABLE))


def publish_marker_exists_query(dialect: Dialect | str) -> sql.Composed:
    """One row when ``schema`` has a marker table; execute with
    ``(catalog_name(dialect, schema),)`` (the catalog holds folded names on Redshift)."""
    parse_dialect(dialect)
    return sql.SQL(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = {}"
    ).format(sql.Literal(PUBLISH_MARKER_TABLE))


def publish_marker_query(dialect: Dialect | str, schema: str) -> sql.Composed:
    """``(partition_date, run_id)`` of the schema's marker row."""
    return sql.SQL(
        "SELECT partition_date, run_id FROM {} ORDER BY published_at DESC LIMIT 1"
    ).format(qualified_name(parse_dialect(dialect), schema, PUBLISH_MARKER_TABLE))
