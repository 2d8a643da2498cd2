"""Postgres dump → S3 → SQS sensor → fail-closed PII scrub → restore."""
