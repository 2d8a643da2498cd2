"""The pipeline components: the registry module `dg list components` reads (pyproject's
``[tool.dg.project] registry_modules``). Members load on first use
(:mod:`etl_platform.lazy_exports`)."""

from etl_platform.lazy_exports import lazy_exports

_EXPORTS = {
    "DynamoTableEtl": ".dynamo_etl",
    "LakeExport": ".lake_export",
    "MicrobatchLoader": ".microbatch",
    "PostgresDumpPipeline": ".postgres_dump.component",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
