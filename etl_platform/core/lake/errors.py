"""The lake export's errors; messages name the table and, where known, the column."""

from __future__ import annotations


class LakeExportError(Exception):
    """Any failure of the lake export; messages name the table and, where known, the column.
    ``setting`` is the table setting that named the bad input (``date_column``, ``columns``,
    ``as_text``), when one did: the component adds where that setting is."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class UnsupportedColumnError(LakeExportError):
    """A column whose type cannot be represented exactly in the lake."""


class ValueOutOfRangeError(LakeExportError):
    """A value that does not fit the column's lake type (it would otherwise be rounded or lost)."""


class ReadBackError(LakeExportError):
    """Written Parquet parts do not match the expected row count or schema."""
