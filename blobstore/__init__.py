"""Where sealed media lives: S3 (production, tests) or local files (embedded), behind one interface.

Everything written here is already encrypted by `evidence.crypto`; the stores never see plaintext.
Multipart uploads stream parts as they come: on S3 they are S3 multipart parts, locally each part
is written at its final offset in a `.partial` file that is renamed into place on completion, so
neither keeps a temporary copy of the whole file.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages


class StorageUnavailable(Exception):
    """The media store could not be reached or refused the operation; nothing was changed."""


class BlobStore:
    def check(self) -> None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def read_range(
        self, key: str, start: int, end: int, *, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Yield the bytes [start, end) of an object, in chunks of `chunk_size` bytes (the last may
        be shorter): a reader that needs a whole unit to go on asks for that unit, and is not kept
        waiting for bytes beyond it."""
        raise NotImplementedError

    def size(self, key: str) -> int | None: ...
    def delete_many(self, keys: list[str]) -> list[str]:
        """Delete objects (missing ones count as deleted). Returns the keys that failed."""
        raise NotImplementedError

    def iter_keys(self, prefix: str) -> Iterator[str]: ...
    def multipart_start(self, key: str) -> str: ...
    def multipart_put(self, key: str, upload_id: str, number: int, offset: int, data: bytes) -> str:
        """Store part `number` (1-based), which starts at byte `offset` of the object."""
        raise NotImplementedError

    def multipart_complete(self, key: str, upload_id: str, parts: list[list]) -> None: ...
    def multipart_abort(self, key: str, upload_id: str) -> None: ...
    def set_legal_hold(self, key: str, on: bool) -> None:
        raise NotImplementedError

    def put_retained(self, key: str, data: bytes, *, retain_until) -> None:
        """Store an object that is not to be overwritten or deleted before `retain_until` (S3
        Object Lock retention where the bucket has it; a read-only file locally)."""
        raise NotImplementedError


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"bad storage key {key!r}")
        return path

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"{self.root} is not writable")

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def read_range(
        self, key: str, start: int, end: int, *, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        with f:
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = f.read(min(remaining, chunk_size))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete_many(self, keys: list[str]) -> list[str]:
        failed = []
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError:
                failed.append(key)
        return failed

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` in byte order, as S3 lists them (the embedded estate is small)."""
        base = self.root
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.endswith((".tmp", ".partial")):
                    continue
                key = str(Path(dirpath, name).relative_to(base))
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys, key=lambda k: k.encode())

    def _partial(self, key: str, upload_id: str) -> Path:
        path = self._path(key)
        return path.with_name(f"{path.name}.{upload_id}.partial")

    def multipart_start(self, key: str) -> str:
        upload_id = uuid.uuid4().hex
        partial = self._partial(key, upload_id)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
        return upload_id

    def multipart_put(self, key: str, upload_id: str, number: int, offset: int, data: bytes) -> str:
        partial = self._partial(key, upload_id)
        if not partial.exists():
            raise StorageUnavailable(f"upload {upload_id} is gone")
        fd = os.open(partial, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"local-{number}-{len(data)}"

    def multipart_complete(self, key: str, upload_id: str, parts: list[list]) -> None:
        partial = self._partial(key, upload_id)
        expected = sum(int(etag.rsplit("-", 1)[1]) for _n, etag in parts)
        if partial.stat().st_size != expected:
            raise StorageUnavailable(
                f"upload {upload_id} has {partial.stat().st_size} bytes, expected {expected}"
            )
        os.replace(partial, self._path(key))

    def multipart_abort(self, key: str, upload_id: str) -> None:
        self._partial(key, upload_id).unlink(missing_ok=True)

    def set_legal_hold(self, key: str, on: bool) -> None:
        return None  # no object lock on local files; the database hold is the only guard

    def put_retained(self, key: str, data: bytes, *, retain_until) -> None:
        self.put(key, data)
        os.chmod(self._path(key), 0o400)


class S3BlobStore(BlobStore):
    def __init__(self):
        # Reuse the configured django-storages backend: one place says how to reach S3.
        storage = storages.create_storage(settings.STORAGES["default"])
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name

    def _call(self, fn, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError  # only with S3 configured

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(kwargs.get("Key")) from None
            raise StorageUnavailable(f"S3 {fn.__name__}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {fn.__name__}: {exc}") from exc

    def check(self) -> None:
        self._call(self.client.head_bucket)

    def put(self, key: str, data: bytes) -> None:
        self._call(self.client.put_object, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self._call(self.client.get_object, Key=key)["Body"].read()

    def read_range(
        self, key: str, start: int, end: int, *, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        if end <= start:
            return
        body = self._call(self.client.get_object, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def size(self, key: str) -> int | None:
        try:
            return self._call(self.client.head_object, Key=key)["ContentLength"]
        except KeyError:
            return None

    def delete_many(self, keys: list[str]) -> list[str]:
        failed: list[str] = []
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            try:
                result = self._call(
                    self.client.delete_objects,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except StorageUnavailable:
                failed += batch
                continue
            failed += [e["Key"] for e in result.get("Errors", []) if e.get("Code") != "NoSuchKey"]
        return failed

    def iter_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def multipart_start(self, key: str) -> str:
        return self._call(self.client.create_multipart_upload, Key=key)["UploadId"]

    def multipart_put(self, key: str, upload_id: str, number: int, offset: int, data: bytes) -> str:
        result = self._call(
            self.client.upload_part, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return result["ETag"]

    def multipart_complete(self, key: str, upload_id: str, parts: list[list]) -> None:
        self._call(
            self.client.complete_multipart_upload,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
        )

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            self._call(self.client.abort_multipart_upload, Key=key, UploadId=upload_id)
        except (KeyError, StorageUnavailable):
            pass  # already gone; the bucket's lifecycle rule is the backstop

    def set_legal_hold(self, key: str, on: bool) -> None:
        self._call(
            self.client.put_object_legal_hold,
            Key=key,
            LegalHold={"Status": "ON" if on else "OFF"},
        )

    def put_retained(self, key: str, data: bytes, *, retain_until) -> None:
        extra = {}
        if settings.S3_OBJECT_LOCK:
            extra = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": retain_until}
        self._call(self.client.put_object, Key=key, Body=data, **extra)


@functools.cache
def blob_store() -> BlobStore:
    if settings.S3_BUCKET:
        return S3BlobStore()
    return LocalBlobStore(settings.MEDIA_ROOT)
