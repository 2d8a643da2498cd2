"""Pure logic of the Postgres dump scrub: rules, coverage, COPY text rewriting, residual scan."""

from .archive import ArchiveError, DumpTable, dump_tables
from .copy_text import CopyDataRewriter, decode_field, encode_field
from .coverage import CoverageError, ScrubPlan, TablePlan, plan_scrub
from .detector import detect_pii
from .residual import OriginalValues, ResidualCounts, ResidualScanner
from .rules import ColumnRule, RuleError, ScrubRules, display_name, parse_rules
from .transforms import TransformError, column_rewrite

__all__ = [
    "ArchiveError",
    "ColumnRule",
    "CopyDataRewriter",
    "CoverageError",
    "DumpTable",
    "OriginalValues",
    "ResidualCounts",
    "ResidualScanner",
    "RuleError",
    "ScrubPlan",
    "ScrubRules",
    "TablePlan",
    "TransformError",
    "column_rewrite",
    "decode_field",
    "detect_pii",
    "display_name",
    "dump_tables",
    "encode_field",
    "parse_rules",
    "plan_scrub",
]
