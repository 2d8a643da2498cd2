"""A scrub worker process: chunks of COPY rows in on stdin, :class:`ChunkResult` out on stdout.

The step starts each worker as ``python -P <this file>``, so the worker imports only the pure
scrub core and ISA-L: no Dagster, no boto3, no thread or lock of the step's process crosses
into it (nothing is forked), and it starts in a fraction of a second at ~25 MB. The scrub key
arrives in the first frame on stdin, never in argv or the environment. All workers of one step
get the same ``PYTHONHASHSEED`` (random per step) so their value fingerprints compare.

Frames are a 4-byte big-endian length and a pickle (both ends are this package's code). The
worker exits at end of input; a failed chunk answers ``("error", message)`` without values.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import IO, Any

_LENGTH = struct.Struct(">Q")


def write_frame(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message, or ``None`` at end of input."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _describe(exc: Exception) -> str:
    """Our own errors name the table and setting; any other error is named by type only (its
    message could quote a field value)."""
    from etl_platform.core.scrub.copy_text import CopyFormatError
    from etl_platform.core.scrub.transforms import TransformError

    if isinstance(exc, CopyFormatError | TransformError):
        return str(exc)
    return f"{type(exc).__name__} while scrubbing a chunk"


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from etl_platform.core.scrub.chunks import ChunkScrubber

    init = read_frame(stdin)
    if init is None:
        return
    specs, key, level = init
    scrubbers = [ChunkScrubber(spec, key, level) for spec in specs]
    while (task := read_frame(stdin)) is not None:
        table, rows, rewrite = task
        try:
            reply: Any = scrubbers[table].scrub(rows, rewrite)
        except Exception as exc:  # reported to the step, which fails naming the table
            reply = ("error", _describe(exc))
        write_frame(stdout, reply)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
