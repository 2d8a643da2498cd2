"""S3 events on SQS -> micro-batch merge loads into one warehouse table, plus bulk loads by day."""

from etl_platform.components.microbatch.component import MicrobatchLoader

__all__ = ["MicrobatchLoader"]
