"""The S3 settings reach the real S3 server: files stored through Django are read back from it."""

import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from blobstore import S3BlobStore, blob_store


def test_default_storage_is_s3_and_stores_and_reads_a_file():
    name = f"tests/{uuid.uuid4()}.txt"
    saved = default_storage.save(name, ContentFile(b"chain of custody"))
    try:
        with default_storage.open(saved) as fh:
            assert fh.read() == b"chain of custody"
        # And it really is in the bucket, as seen by a plain S3 client.
        store = blob_store()
        assert isinstance(store, S3BlobStore)
        assert store.get(saved) == b"chain of custody"
    finally:
        default_storage.delete(saved)
    assert not default_storage.exists(saved)


def test_blob_store_multipart_round_trip_and_batched_delete():
    store = blob_store()
    key = f"tests/{uuid.uuid4()}/media"
    upload_id = store.multipart_start(key)
    part1, part2 = b"a" * (5 * 1024 * 1024), b"tail"
    etag1 = store.multipart_put(key, upload_id, 1, 0, part1)
    etag2 = store.multipart_put(key, upload_id, 2, len(part1), part2)
    store.multipart_complete(key, upload_id, [[1, etag1], [2, etag2]])
    assert store.size(key) == len(part1) + len(part2)
    assert b"".join(store.read_range(key, len(part1) - 2, len(part1) + 4)) == b"aatail"
    assert store.delete_many([key, f"tests/{uuid.uuid4()}/never-existed"]) == []
    assert store.size(key) is None


def test_reading_a_missing_object_is_a_key_error():
    with pytest.raises(KeyError):
        blob_store().get(f"tests/{uuid.uuid4()}")
