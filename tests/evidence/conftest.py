import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories as f


@pytest.fixture
def dock_key(db):
    dock, key = f.dock()
    return dock, key


@pytest.fixture
def cam(db):
    camera, _officer = f.issued_camera(at=timezone.now() - timedelta(days=30))
    return camera


class Tus:
    """A minimal tus client over Django's test client, to drive the protocol step by step."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def headers(self, **extra):
        return {"HTTP_TUS_RESUMABLE": "1.0.0", "HTTP_AUTHORIZATION": f"Bearer {self.key}", **extra}

    def create(self, length: int, metadata: dict[str, str], *, skip_if_stored: bool = False):
        encoded = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items()
        )
        extra = {"HTTP_BWV_SKIP_IF_STORED": "1"} if skip_if_stored else {}
        return self.client.post(
            "/api/v1/ingest/",
            **self.headers(HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=encoded, **extra),
        )

    def patch(self, url: str, offset: int, body: bytes, *, checksum: str | None = None, **extra):
        extra["HTTP_UPLOAD_OFFSET"] = str(offset)
        if checksum:
            extra["HTTP_UPLOAD_CHECKSUM"] = checksum
        return self.client.generic(
            "PATCH",
            url,
            data=body,
            content_type="application/offset+octet-stream",
            **self.headers(**extra),
        )

    def head(self, url: str):
        return self.client.head(url, **self.headers())

    def get(self, url: str):
        return self.client.get(url, **self.headers())

    def delete(self, url: str):
        return self.client.delete(url, **self.headers())


@pytest.fixture
def tus(client, dock_key):
    return Tus(client, dock_key[1])
