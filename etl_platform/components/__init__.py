"""The pipeline components: the registry module `dg list components` reads (pyproject's
``[tool.dg.project] registry_modules``)."""

from etl_platform.components.dynamo_etl import DynamoTableEtl
from etl_platform.components.lake_export import LakeExport
from etl_platform.components.microbatch import MicrobatchLoader
from etl_platform.components.postgres_dump.component import PostgresDumpPipeline

__all__ = ["DynamoTableEtl", "LakeExport", "MicrobatchLoader", "PostgresDumpPipeline"]
