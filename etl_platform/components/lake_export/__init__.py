"""The Postgres → Parquet lake pipeline component (see :mod:`.component`). Members load on first
use, so the day export (:mod:`.day_export`) imports without Dagster."""

from etl_platform.lazy_exports import lazy_exports

_EXPORTS = {
    "COUNT_CHECK": ".checks",
    "GLUE_CHECK": ".checks",
    "MEDIAN_CHECK": ".checks",
    "READ_BACK_CHECK": ".checks",
    "LakeExport": ".component",
    "LakeTable": ".component",
    "DRY_RUN_TAG": ".export",
    "LakeExportRunConfig": ".export",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
