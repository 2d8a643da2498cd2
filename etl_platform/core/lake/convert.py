"""Record batches from the driver → batches of the planned lake schema, checking every value
that could otherwise be lost: decimal overflow or rescale, NaN, ±infinity, nested arrays.

A value that does not fit fails the export naming the column and the value; it is never rounded.
Multi-dimensional arrays (which the driver would silently flatten) and ±infinity
dates/timestamps fail naming the column. Array lower bounds other than 1 are not kept (the
elements and their order are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .arrow_types import ColumnPlan
from .errors import LakeExportError, ValueOutOfRangeError

# Smallest finite PostgreSQL timestamp (4713-11-24 BC 00:00) in µs since 1970 and date (Julian day
# 0) in days since 1970. The driver turns ±infinity into values far below these.
_PG_MIN_TIMESTAMP_US = -211_813_488_000_000_000 + 946_684_800_000_000
_PG_MIN_DATE_DAYS = -2_440_588


def _unwrap(arr: pa.Array) -> pa.Array:
    while isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return arr


def _first_bad_value(arr: pa.Array, target: pa.DataType) -> Any:
    for v in arr.to_pylist():
        if v is None:
            continue
        try:
            pc.cast(pa.array([v], type=arr.type), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return v
    return None


class BatchConverter:
    """Turns the driver's record batches (planned columns, then the ndims helper columns) into
    batches of the planned schema."""

    def __init__(self, table: str, plans: Sequence[ColumnPlan]) -> None:
        self.table = table
        self.plans = list(plans)
        self.schema = pa.schema([p.field for p in plans])
        self.ndims_index = {
            i: len(plans) + k for k, i in enumerate(i for i, p in enumerate(plans) if p.check_ndims)
        }

    def _fail(self, plan: ColumnPlan, what: str) -> ValueOutOfRangeError:
        return ValueOutOfRangeError(
            f"{self.table}.{plan.name} ({plan.declared} → {plan.arrow_type}): {what}"
        )

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One driver batch as a batch of the lake schema; raises naming column and value."""
        n_expected = len(self.plans) + len(self.ndims_index)
        if batch.num_columns != n_expected:
            raise LakeExportError(
                f"{self.table}: driver returned {batch.num_columns} columns, expected {n_expected}"
            )
        out = []
        for i, plan in enumerate(self.plans):
            arr = self._convert_column(plan, _unwrap(batch.column(i)))
            if i in self.ndims_index:
                flag = batch.column(self.ndims_index[i])
                if pc.any(flag).as_py():
                    raise self._fail(
                        plan,
                        "multi-dimensional array value (the lake holds one-dimensional lists);"
                        f" export it as text (as_text=[{plan.name!r}])",
                    )
            out.append(arr)
        return pa.RecordBatch.from_arrays(out, schema=self.schema)

    def _convert_column(self, plan: ColumnPlan, arr: pa.Array) -> pa.Array:
        target = plan.arrow_type
        if arr.type != target:
            try:
                arr = pc.cast(arr, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                values = arr.flatten() if pa.types.is_list(arr.type) else arr
                vtarget = target.value_type if pa.types.is_list(target) else target
                bad = _first_bad_value(values, vtarget)
                shown = repr(bad)[:80] if bad is not None else "?"
                hint = f"export it as text (as_text=[{plan.name!r}])"
                if plan.declared in ("numeric", "numeric[]"):
                    hint = f"widen unconstrained_numeric or {hint}"
                raise self._fail(plan, f"value {shown} does not fit ({e}); {hint}") from e
        self._check_range(plan, arr)
        return arr

    def _check_range(self, plan: ColumnPlan, arr: pa.Array) -> None:
        vt = arr.type.value_type if pa.types.is_list(arr.type) else arr.type
        if not (pa.types.is_timestamp(vt) or pa.types.is_date32(vt)):
            return
        values = arr.flatten() if pa.types.is_list(arr.type) else arr
        if len(values) == 0 or values.null_count == len(values):
            return
        storage = pa.int64() if pa.types.is_timestamp(vt) else pa.int32()
        lo = pc.min(values.view(storage)).as_py()
        bound = _PG_MIN_TIMESTAMP_US if pa.types.is_timestamp(vt) else _PG_MIN_DATE_DAYS
        if lo is not None and lo < bound:
            raise self._fail(
                plan,
                "infinite or out-of-range value (±infinity has no Parquet representation); "
                f"export it as text (as_text=[{plan.name!r}])",
            )
