"""While PostgreSQL cannot be reached, every endpoint answers 503 with Retry-After, never 500.

The database is really unreachable here: gunicorn runs `bwv.wsgi` as in production, with a
DATABASE_URL pointing at a loopback port where nothing listens, so every connection is refused.
"""

import pytest
import requests

from devtools.localservices import _free_ports
from tests.webserver import Gunicorn

DOCK = "bwvdock_abc_secret"  # any key: looking it up needs the database
SESSION = "sessionid=abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    dead = _free_ports(1)[0]
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with Gunicorn(database_url=f"postgres://bwv@127.0.0.1:{dead}/bwv", log=log) as server:
        yield server


@pytest.mark.parametrize(
    "method, path, headers",
    [
        ("OPTIONS", "/api/v1/ingest/", {"Authorization": f"Bearer {DOCK}"}),
        (
            "POST",
            "/api/v1/ingest/",
            {"Authorization": f"Bearer {DOCK}", "Tus-Resumable": "1.0.0", "Upload-Length": "10"},
        ),
        ("GET", "/api/v1/recordings/", {"Authorization": "Token 0123456789abcdef"}),
        ("GET", "/api/v1/cases/", {"Cookie": SESSION}),
    ],
)
def test_the_apis_answer_503_in_json_while_the_database_is_down(
    server_without_database, method, path, headers
):
    response = requests.request(
        method, server_without_database.url + path, headers=headers, timeout=30
    )
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "try again shortly" in response.json()["detail"]
    assert "Traceback" not in response.text and "OperationalError" not in response.text


@pytest.mark.parametrize("path", ["/", "/recordings/", "/estate/"])
def test_pages_answer_503_in_plain_text_while_the_database_is_down(server_without_database, path):
    response = requests.get(
        server_without_database.url + path, headers={"Cookie": SESSION}, timeout=30
    )
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert int(response.headers["Retry-After"]) > 0
    assert "try again shortly" in response.text
