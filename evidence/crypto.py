"""Encryption at rest of recordings (and of anything stored the same way, such as a requester's
identity evidence: `object_id` is the id of whatever is sealed).

Guarantees:
- each recording has its own random 256-bit data key, stored only wrapped (AES-256-GCM) by a
  key-encryption key (KEK) named by `kek_id`; the wrap is bound to the recording id, so a wrapped key
  copied onto another row does not unwrap;
- media is cut into fixed-size plaintext segments, each sealed with AES-256-GCM under a fresh random
  96-bit nonce; the associated data binds the recording id, the segment index and whether it is the
  last one, so segments cannot be altered, swapped, reordered or cut off without decryption failing;
- any byte range can be decrypted by fetching and opening only the segments it covers;
- destroying the wrapped key makes every copy of the ciphertext unreadable (crypto-shredding).

Stored segment: nonce (12) || ciphertext || tag (16).
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

NONCE = 12
TAG = 16
OVERHEAD = NONCE + TAG
_SEG_DOMAIN = b"bwv.segment.v1"
_WRAP_DOMAIN = b"bwv.datakey.v1"
_BLOB_DOMAIN = b"bwv.blob.v1"


class TamperedError(Exception):
    """Stored ciphertext failed authentication: it was altered, truncated, moved or reordered."""


class KeyDestroyed(Exception):
    """The data key has been destroyed (crypto-shredding): what it sealed can never be read again."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(data_key: bytes, *, object_id: uuid.UUID) -> tuple[str, bytes]:
    kek_id = settings.BWV_KEK_CURRENT
    nonce = os.urandom(NONCE)
    aad = _WRAP_DOMAIN + object_id.bytes + kek_id.encode()
    return kek_id, nonce + AESGCM(settings.BWV_KEKS[kek_id]).encrypt(nonce, data_key, aad)


def unwrap_data_key(wrapped: bytes | None, *, kek_id: str, object_id: uuid.UUID) -> bytes:
    if not wrapped:
        raise KeyDestroyed(f"the data key of {object_id} has been destroyed")
    try:
        kek = settings.BWV_KEKS[kek_id]
    except KeyError:
        raise TamperedError(f"key-encryption key {kek_id!r} is not configured") from None
    aad = _WRAP_DOMAIN + object_id.bytes + kek_id.encode()
    wrapped = bytes(wrapped)
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE], wrapped[NONCE:], aad)
    except InvalidTag:
        raise TamperedError(f"the data key of {object_id} does not unwrap") from None


@dataclass(frozen=True)
class SegmentCipher:
    """Seals and opens the segments of one recording."""

    key: bytes
    object_id: uuid.UUID
    segment_size: int

    @property
    def sealed_size(self) -> int:
        return self.segment_size + OVERHEAD

    def _aad(self, index: int, last: bool) -> bytes:
        return _SEG_DOMAIN + self.object_id.bytes + struct.pack(">Q?", index, last)

    def seal(self, index: int, plaintext: bytes, *, last: bool) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, self._aad(index, last))

    def seal_into(self, index: int, plaintext, *, last: bool, out: memoryview) -> int:
        """Seal a segment into `out` (at least len(plaintext) + OVERHEAD bytes of a writable
        buffer), allocating nothing; returns the bytes written. The ingest seals into the storage
        part it will send, so no segment is copied on its way to storage."""
        size = len(plaintext) + OVERHEAD
        nonce = os.urandom(NONCE)
        out[:NONCE] = nonce
        self._aead.encrypt_into(nonce, plaintext, self._aad(index, last), out[NONCE:size])
        return size

    def open_into(self, index: int, sealed, *, last: bool, out: memoryview) -> int:
        """Open a segment into `out`; returns the plaintext's length."""
        size = len(sealed) - OVERHEAD
        try:
            self._aead.decrypt_into(
                sealed[:NONCE], sealed[NONCE:], self._aad(index, last), out[:size]
            )
        except InvalidTag:
            raise TamperedError(
                f"segment {index} of {self.object_id} failed authentication"
            ) from None
        return size

    @cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.key)

    def open(self, index: int, sealed: bytes, *, last: bool) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], self._aad(index, last))
        except InvalidTag:
            raise TamperedError(
                f"segment {index} of {self.object_id} failed authentication"
            ) from None

    def seal_all(self, plaintext: bytes) -> bytes:
        """A small object held in memory, sealed whole in this layout: its segments, in order, the
        last one marked. What `media.plaintext_range` reads back a range at a time."""
        seg = self.segment_size
        count = self.segment_count(len(plaintext))
        return b"".join(
            self.seal(i, plaintext[i * seg : (i + 1) * seg], last=i == count - 1)
            for i in range(count)
        )

    # Layout arithmetic ------------------------------------------------------------------------
    def segment_count(self, plain_length: int) -> int:
        return max(1, -(-plain_length // self.segment_size))

    def sealed_length(self, plain_length: int) -> int:
        return plain_length + self.segment_count(plain_length) * OVERHEAD

    def sealed_span(self, first: int, last: int, plain_length: int) -> tuple[int, int]:
        """Byte range [start, end) of the stored object holding segments first..last."""
        start = first * self.sealed_size
        end = min((last + 1) * self.sealed_size, self.sealed_length(plain_length))
        return start, end


def seal_blob(key: bytes, *, object_id: uuid.UUID, purpose: str, data: bytes) -> bytes:
    """Seal a small object that belongs to a recording (poster frame, upload tail)."""
    nonce = os.urandom(NONCE)
    aad = _BLOB_DOMAIN + object_id.bytes + purpose.encode()
    return nonce + AESGCM(key).encrypt(nonce, data, aad)


def open_blob(key: bytes, *, object_id: uuid.UUID, purpose: str, sealed: bytes) -> bytes:
    aad = _BLOB_DOMAIN + object_id.bytes + purpose.encode()
    sealed = bytes(sealed)
    try:
        return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], aad)
    except InvalidTag:
        raise TamperedError(f"{purpose} of {object_id} failed authentication") from None
