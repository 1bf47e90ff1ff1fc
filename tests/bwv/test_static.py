"""Static files are served with hashed names, compressed, and cached for good (WhiteNoise's
compressed manifest storage): a page names its stylesheet and scripts by their content's hash,
so a browser never keeps an old copy and never asks twice for the same one."""

import re

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

HASHED = re.compile(r'(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.(?:css|js))"')


def test_pages_name_their_assets_by_hash_and_they_come_compressed_and_immutable(client):
    assert settings.STORAGES["staticfiles"]["BACKEND"] == "common.storage.StaticFilesStorage"
    page = client.get("/accounts/login/").content.decode()
    assets = HASHED.findall(page)
    assert any("/bwv." in a and a.endswith(".css") for a in assets), assets
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        response = client.get(asset, HTTP_ACCEPT_ENCODING="gzip, br")
        assert response.status_code == 200, asset
        assert response.get("Content-Encoding") in ("gzip", "br"), asset
        assert "immutable" in response["Cache-Control"], response["Cache-Control"]
        assert "max-age=315360000" in response["Cache-Control"]
    # A name that is not the current hash is not served from the cache's point of view: 404.
    assert client.get("/static/vendor/css/bwv.000000000000.css").status_code == 404
