import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_storage_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "storage": "ok", "broker": "ok"}


def test_healthz_is_503_when_storage_is_unreachable(client, settings):
    # A real fault: the S3 endpoint points at a port where nothing listens.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    options = {
        **settings.STORAGES["default"]["OPTIONS"],
        "endpoint_url": f"http://127.0.0.1:{dead}",
    }
    storages = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": options},
    }
    with override_settings(STORAGES=storages):
        from blobstore import blob_store

        blob_store.cache_clear()
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["storage"].startswith("error")
    assert body["database"] == "ok"
    assert "127.0.0.1" not in response.content.decode()  # no internals to an anonymous caller
