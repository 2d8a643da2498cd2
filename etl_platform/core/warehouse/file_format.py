"""The format of the files a load COPYs: gzip CSV with validated options, or Parquet.

A setting, never free SQL: each option is checked here and rendered by the COPY builders
(:mod:`.copy`) as a literal of the option it maps to. Errors name the option (``delimiter``,
``quote``, ``header``, ``null_marker``); the component prefixes its field (``file_format.``).

* ``delimiter`` one character (default ``,``): PostgreSQL ``DELIMITER``, Redshift ``DELIMITER``;
* ``quote`` one character (default ``"``): PostgreSQL ``QUOTE``, Redshift ``QUOTE AS``;
* ``header`` the first line is a header and is skipped: PostgreSQL ``HEADER true``, Redshift
  ``IGNOREHEADER 1``;
* ``null_marker`` the field that means NULL (default: the dialect's marker, an unquoted empty
  field on PostgreSQL, a NUL byte on Redshift): PostgreSQL ``NULL``, Redshift ``NULL AS``.

One byte each for delimiter and quote (both engines' rule), printable ASCII, no backslash (a
backslash means an escape in Redshift literals); the two differ, and the NULL marker contains
neither (PostgreSQL refuses such a COPY). Parquet takes none of them: its files carry their
types, NULLs and column names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CsvOptions", "FileFormat", "FileKind"]

_MAX_NULL_MARKER = 32


class FileKind(StrEnum):
    CSV_GZIP = "csv_gzip"
    PARQUET = "parquet"


def _check_char(option: str, value: str) -> None:
    if len(value) != 1 or not (" " <= value <= "~") or value in "\\\n\r":
        raise ValueError(
            f"{option} {value!r}: must be one printable ASCII character other than a backslash"
        )


@dataclass(frozen=True)
class CsvOptions:
    """COPY options of a CSV file; the defaults are the platform's own CSV."""

    delimiter: str = ","
    quote: str = '"'
    header: bool = False
    #: None: the dialect's marker (``Dialect.csv_null``)
    null_marker: str | None = None

    def __post_init__(self) -> None:
        _check_char("delimiter", self.delimiter)
        _check_char("quote", self.quote)
        if self.delimiter == self.quote:
            raise ValueError(f"quote {self.quote!r}: must differ from the delimiter")
        if not isinstance(self.header, bool):
            raise ValueError(f"header {self.header!r}: must be true or false")
        marker = self.null_marker
        if marker is None:
            return
        if len(marker) > _MAX_NULL_MARKER or any(
            not (" " <= c <= "~") or c == "\\" for c in marker
        ):
            raise ValueError(
                f"null_marker {marker!r}: at most {_MAX_NULL_MARKER} printable ASCII characters, "
                "no backslash"
            )
        if self.delimiter in marker or self.quote in marker:
            raise ValueError(
                f"null_marker {marker!r}: must not contain the delimiter or the quote character"
            )


@dataclass(frozen=True)
class FileFormat:
    """What a load's files are: ``kind`` and, for CSV, its options."""

    kind: FileKind = FileKind.CSV_GZIP
    csv: CsvOptions = CsvOptions()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FileKind(self.kind))
        if self.kind is FileKind.PARQUET and self.csv != CsvOptions():
            raise ValueError("CSV options (delimiter, quote, header, null_marker) with parquet")

    @property
    def is_parquet(self) -> bool:
        return self.kind is FileKind.PARQUET
