"""A SHA-256 whose running state can be saved and restored, at OpenSSL speed.

A tus upload arrives as several PATCH requests that may land on different workers, hours apart.
hashlib objects cannot be serialised, and the parts of an unfinished S3 multipart upload cannot be
read back to re-hash them. So we drive OpenSSL's SHA256_Init/Update/Final on a context struct that
we own (`SHA256_CTX`, a plain public struct of 112 bytes) and store its bytes between requests.
The state reveals no more of the clip than the final hash does; it is stored only while uploading.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

_CTX_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (32-bit words)


def _load() -> ctypes.CDLL:
    # Prefer the libcrypto that Python's own hashlib is linked against.
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
            return lib
        except (OSError, AttributeError):
            continue
    raise ImportError("libcrypto with SHA256_Init is required for resumable hashing")


_lib = _load()


class ResumableSha256:
    def __init__(self, state: bytes | None = None):
        self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
        if state is None:
            _lib.SHA256_Init(self._ctx)
        else:
            if len(state) != _CTX_SIZE:
                raise ValueError("not a SHA-256 state")
            ctypes.memmove(self._ctx, state, _CTX_SIZE)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash bytes, or a writable buffer (a bytearray, a slice of one) where it lies: the
        ingest reads the socket into buffers it reuses, and hashes them without copying."""
        if isinstance(data, bytes):
            _lib.SHA256_Update(self._ctx, data, len(data))
            return
        view = memoryview(data).cast("B")
        if view.nbytes:
            _lib.SHA256_Update(
                self._ctx, (ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes
            )

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        # Finalise a copy so the object stays usable.
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        _lib.SHA256_Final(out, ctx)
        return out.raw.hex()


def _self_test() -> None:
    h = ResumableSha256()
    h.update(b"a" * 100)
    h = ResumableSha256(h.state())
    h.update(bytearray(b"b" * 100))  # a buffer, as the ingest passes them
    if h.hexdigest() != hashlib.sha256(b"a" * 100 + b"b" * 100).hexdigest():
        raise ImportError("libcrypto SHA-256 state layout is not as expected")


_self_test()
