"""The Postgres → Parquet lake pipeline component (see :mod:`.component`)."""

from .checks import COUNT_CHECK, GLUE_CHECK, MEDIAN_CHECK, READ_BACK_CHECK
from .component import LakeExport, LakeTable
from .export import DRY_RUN_TAG, LakeExportRunConfig

__all__ = [
    "COUNT_CHECK",
    "DRY_RUN_TAG",
    "GLUE_CHECK",
    "MEDIAN_CHECK",
    "READ_BACK_CHECK",
    "LakeExport",
    "LakeExportRunConfig",
    "LakeTable",
]
