"""A keyed pseudorandom function over a whole column in a few C calls: EMAC (ECBC-MAC: CBC-MAC
with AES-256, its result encrypted again under a second key; the construction CMAC refines).
The ``fake_email``/``fake_name``/``fake_phone`` pseudonyms are drawn from it (``hash`` is a
plain HMAC-SHA256, so it can be recomputed elsewhere: see :mod:`.transforms`).

Per value, the work is one block per 16 bytes of input inside OpenSSL and numpy, with no Python
frame: padding (``bytes.ljust`` mapped in C), one ECB call per block position for all values of
the same padded width at once, XORs as numpy array operations. That is several times cheaper
than one keyed BLAKE2b object per value.

Messages are length-prefixed (a first block holding the length), so zero padding is not
ambiguous. Keys come from the scrub key through keyed BLAKE2b with the action's tag as
personalization: outputs of different actions are independent, and one value maps to one output
in every table and column (joins and foreign keys on pseudonymized columns hold).
"""

from __future__ import annotations

import hashlib
from itertools import repeat

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16


def _subkey(key: bytes, tag: bytes, role: bytes) -> bytes:
    return hashlib.blake2b(role, key=key[:64], person=tag[:16], digest_size=32).digest()


class KeyedColumnPrf:
    """``digests(values)`` → an ``(n, 16 * outputs)`` uint8 array of keyed digests."""

    def __init__(self, key: bytes, tag: bytes, outputs: int = 1) -> None:
        ecb = modes.ECB()
        self._chain = Cipher(algorithms.AES(_subkey(key, tag, b"chain")), ecb).encryptor()
        self._finals = [
            Cipher(algorithms.AES(_subkey(key, tag, b"final%d" % i)), ecb).encryptor()
            for i in range(outputs)
        ]

    def _encrypt(self, state: np.ndarray) -> np.ndarray:
        out = self._chain.update(state.tobytes())
        return np.frombuffer(out, dtype=np.uint8).reshape(-1, BLOCK)

    def _chained(self, values: list[bytes], lengths: np.ndarray, blocks: int) -> np.ndarray:
        """The CBC-MAC state of values that all pad to ``blocks`` blocks."""
        count = len(values)
        state = np.zeros((count, BLOCK), dtype=np.uint8)
        state[:, :8] = lengths.astype("<u8").view(np.uint8).reshape(count, 8)
        state = self._encrypt(state)
        if blocks:
            width = blocks * BLOCK
            padded = b"".join(map(bytes.ljust, values, repeat(width), repeat(b"\0")))
            data = np.frombuffer(padded, dtype=np.uint8).reshape(count, width)
            for start in range(0, width, BLOCK):
                state = self._encrypt(state ^ data[:, start : start + BLOCK])
        return state

    def digests(self, values: list[bytes]) -> np.ndarray:
        count = len(values)
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
        blocks = (lengths + BLOCK - 1) // BLOCK
        state = np.empty((count, BLOCK), dtype=np.uint8)
        if count and blocks.min() == blocks.max():
            state[:] = self._chained(values, lengths, int(blocks[0]))
        else:  # one pass per padded width, so one long value does not widen them all
            for width in np.unique(blocks):
                where = np.flatnonzero(blocks == width)
                group = [values[i] for i in where.tolist()]
                state[where] = self._chained(group, lengths[where], int(width))
        raw = state.tobytes()
        finals = [np.frombuffer(f.update(raw), dtype=np.uint8) for f in self._finals]
        return np.concatenate([f.reshape(count, BLOCK) for f in finals], axis=1)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NL = ord("\n")


def hex_digits(digests: np.ndarray) -> np.ndarray:
    """``(n, w)`` bytes → ``(n, 2w)`` lower-case hex characters."""
    out = np.empty((digests.shape[0], digests.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = _HEX[digests >> 4]
    out[:, 1::2] = _HEX[digests & 15]
    return out


_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
_FIVE_BITS = np.array([16, 8, 4, 2, 1], dtype=np.uint8)


def base32_digits(digests: np.ndarray, count: int) -> np.ndarray:
    """``count`` lower-case base32 characters (RFC 4648's alphabet, ``a-z2-7``) per row, from
    the first ``5 * count`` bits: 5 bits a character where hex carries 4."""
    needed = (5 * count + 7) // 8
    bits = np.unpackbits(digests[:, :needed], axis=1)[:, : 5 * count]
    return _BASE32[bits.reshape(-1, count, 5) @ _FIVE_BITS]


def decimal_digits(digests: np.ndarray, count: int) -> np.ndarray:
    """``count`` decimal digit characters per row (from 16-bit words: bias below 1e-4)."""
    words = digests[:, : 2 * count].copy().view(">u2")
    return (words % 10 + ord("0")).astype(np.uint8)


def rows_of(*parts: np.ndarray | bytes, count: int) -> list[bytes]:
    """Concatenate per-row character arrays and constant byte strings → one bytes per row."""
    columns = []
    for part in parts:
        if isinstance(part, bytes):
            part = np.tile(np.frombuffer(part, dtype=np.uint8), (count, 1))
        columns.append(part)
    columns.append(np.full((count, 1), _NL, dtype=np.uint8))
    return np.concatenate(columns, axis=1).tobytes().split(b"\n")[:-1] if count else []
