"""Boto3 clients for the platform's AWS resources, with configuration errors that name the setting.

Endpoints come from the resource's ``endpoint_url`` or, when unset, from boto3's own environment
(``AWS_ENDPOINT_URL`` points every client at the local moto server; unset in production).
Throttling and transient errors are retried by botocore's ``adaptive`` mode (exponential backoff
with jitter plus client-side rate limiting), so no call site hand-writes an AWS retry loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import PrivateAttr


class AwsConfigurationError(RuntimeError):
    """AWS cannot be reached or is not configured; the message names the setting to fix."""


def _endpoint_setting(endpoint_url: str | None) -> str:
    if endpoint_url:
        return f"endpoint_url={endpoint_url!r}"
    env = os.environ.get("AWS_ENDPOINT_URL")
    return (
        f"AWS_ENDPOINT_URL={env!r}" if env else "the default AWS endpoint (AWS_ENDPOINT_URL unset)"
    )


class AwsResourceError(AwsConfigurationError):
    """A bucket, key, table, queue or Glue entity does not exist or may not be used; the message
    names it and, where the caller said, the setting that holds it. Retried or not as the error
    it wraps (``__cause__``): a 4xx is terminal."""


#: Error codes of a missing or forbidden resource, per kind of resource they name.
_MISSING_BUCKET = frozenset({"NoSuchBucket"})
_MISSING_KEY = frozenset({"NoSuchKey"})
_NOT_FOUND = frozenset({"404", "NotFound"})  # a HEAD has no body: bucket or key
_ACCESS_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AccessDeniedException"})
_MISSING_TABLE = frozenset({"ResourceNotFoundException"})
_MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class AwsAddress:
    """What a call addresses (any of bucket/key, table, queue) and the setting holding it."""

    setting: str | None = None
    bucket: str | None = None
    key: str | None = None
    table: str | None = None
    queue: str | None = None

    def named(self, kind: str, value: str) -> str:
        return f"{self.setting or kind} {value!r}"

    def problem(self, code: str, message: str = "") -> str | None:
        """The message for an error ``code`` about this address, or None (not ours to name)."""
        uri = f"s3://{self.bucket}/{self.key}" if self.key else None
        if self.bucket is not None:
            bucket = self.named("s3 bucket", self.bucket)
            if code in _MISSING_BUCKET:
                return f"{bucket}: no such bucket"
            if code in _MISSING_KEY and uri:
                return f"{bucket}: no such key {uri}"
            if code in _NOT_FOUND:
                return f"{bucket}: no such key {uri} (or no such bucket)" if uri else None
            if code in _ACCESS_DENIED:
                return f"{bucket}: access denied" + (f" to {uri}" if uri else "")
        if self.table is not None:
            table = self.named("dynamodb table", self.table)
            if code in _MISSING_TABLE:
                return f"{table}: no such DynamoDB table"
            if code in _ACCESS_DENIED:
                return f"{table}: access denied"
        if self.queue is not None:
            queue = self.named("sqs queue", self.queue)
            if code in _MISSING_QUEUE:
                return f"{queue}: no such SQS queue"
            if code in _ACCESS_DENIED:
                return f"{queue}: access denied"
        return None


_MISSING_GLUE_ENTITY = frozenset({"EntityNotFoundException"})


@dataclass(frozen=True)
class GlueAddress:
    """What a Glue call addresses (a database, and a table in it) and the settings holding
    their names (``glue_database``, ``tables[0].lake_name``). Every client error of the call is
    named (the retry policy still reads the error it wraps: a throttled call stays transient)."""

    database: str
    table: str | None = None
    database_setting: str | None = None
    table_setting: str | None = None

    def named(self) -> str:
        database = f"{self.database_setting or 'glue database'} {self.database!r}"
        if self.table is None:
            return database
        return f"{self.table_setting or 'glue table'} {self.table!r} in {database}"

    def problem(self, code: str, message: str = "") -> str:
        """The message for an error ``code`` (Glue's ``message``) about this address."""
        if code in _MISSING_GLUE_ENTITY:
            # Glue says which: "Database d not found." / "Table t not found."
            if message.startswith("Database "):
                return f"{self.named()}: no such Glue database"
            if message.startswith("Table ") and self.table is not None:
                return f"{self.named()}: no such Glue table {self.database}.{self.table}"
        return f"{self.named()}: {message or code}"


def _client_error(exc: BaseException) -> botocore.exceptions.ClientError | None:
    """The ClientError ``exc`` is or wraps (boto3's managed transfers wrap it)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, botocore.exceptions.ClientError):
            return candidate
    return None


def _code_in_message(exc: BaseException) -> str:
    """An error code quoted in a wrapped error's text (``An error occurred (NoSuchBucket)``)."""
    text = str(exc)
    start = text.find("An error occurred (")
    if start < 0:
        return ""
    start += len("An error occurred (")
    return text[start : text.find(")", start)]


@contextmanager
def naming_aws_settings(
    service: str, endpoint_url: str | None, address: AwsAddress | GlueAddress | None = None
) -> Iterator[None]:
    """Turn botocore's connection and configuration errors into one naming the setting, and,
    for a call on ``address``, a missing or forbidden bucket, key, table or queue (any client
    error of a Glue call) into an :class:`AwsResourceError` naming it and its setting
    (``schema_cache_bucket 'x': no such bucket``, ``glue_database 'd': no such Glue
    database``)."""
    try:
        yield
    except botocore.exceptions.EndpointConnectionError as exc:
        raise AwsConfigurationError(
            f"{service}: cannot connect to {_endpoint_setting(endpoint_url)}: {exc}"
        ) from exc
    except botocore.exceptions.NoRegionError as exc:
        raise AwsConfigurationError(
            f"{service}: no region configured: set region_name or AWS_DEFAULT_REGION"
        ) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsConfigurationError(
            f"{service}: no AWS credentials found (AWS_ACCESS_KEY_ID/AWS_PROFILE/role)"
        ) from exc
    except Exception as exc:
        if address is None:
            raise
        client_error = _client_error(exc)
        error = client_error.response.get("Error", {}) if client_error is not None else {}
        code = error.get("Code", "") if client_error is not None else _code_in_message(exc)
        problem = address.problem(str(code), str(error.get("Message", "")))
        if problem is None:
            raise
        raise AwsResourceError(f"{problem} ({service}: {code})") from (client_error or exc)


def boto3_client(
    service: str,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    max_attempts: int,
    profile_name: str | None = None,
    credentials: dict[str, Any] | None = None,
    use_ssl: bool = True,
    verify: bool | str | None = None,
) -> Any:
    """A boto3 client with adaptive retries and bounded connect/read timeouts."""
    session = boto3.session.Session(profile_name=profile_name, **(credentials or {}))
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "adaptive"},
        connect_timeout=10,
        read_timeout=60,
    )
    with naming_aws_settings(service, endpoint_url):
        return session.client(
            service,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            use_ssl=use_ssl,
            verify=verify,
        )


def client_for(resource: Any, service: str) -> Any:
    """A client built from a dagster-aws resource's settings (region, endpoint, attempts,
    profile, keys): the one factory for every AWS client of the platform, S3 included."""
    credentials = {
        "aws_access_key_id": resource.aws_access_key_id,
        "aws_secret_access_key": resource.aws_secret_access_key,
        "aws_session_token": resource.aws_session_token,
    }
    return boto3_client(
        service,
        region_name=resource.region_name,
        endpoint_url=resource.endpoint_url,
        max_attempts=resource.max_attempts,
        profile_name=resource.profile_name,
        credentials={k: v for k, v in credentials.items() if v},
        use_ssl=getattr(resource, "use_ssl", True),
        verify=getattr(resource, "verify", None),
    )


class AwsServiceResource(ResourceWithBoto3Configuration):
    """Base of the thin AWS resources: one client per resource instance and service."""

    max_attempts: int = 8
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:  # boto3 sessions are not thread-safe; clients are
            if service not in self._clients:
                self._clients[service] = client_for(self, service)
            return self._clients[service]
