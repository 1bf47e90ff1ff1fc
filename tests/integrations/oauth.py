"""A connected system as the tests meet it: registered with its own OAuth 2.0 client, holding a
real token from the real token endpoint of the live server, calling the real API over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from integrations.services import connected_system_create
from tests import factories as f

ALL_SCOPES = ["incidents:write", "crime_reports:write", "outcomes:write", "evidence:read"]


def token_for(base_url: str, client_id: str, secret: str, scope: str | None = None):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return requests.post(
        f"{base_url}/api/v1/oauth/token/", data=data, auth=(client_id, secret), timeout=30
    )


@dataclass
class System:
    base_url: str
    system: object
    client_id: str
    secret: str
    token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body, **kwargs) -> requests.Response:
        return requests.post(
            f"{self.base_url}/api/v1/{path}", json=body, headers=self.headers, timeout=60, **kwargs
        )

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(
            f"{self.base_url}/api/v1/{path}", params=params, headers=self.headers, timeout=60
        )


def connect(
    base_url: str,
    *,
    name: str = "CAD (Harrow)",
    kind: str = "dispatch",
    scopes=ALL_SCOPES,
    boroughs=("QA",),
) -> System:
    found = [f.borough(c) for c in boroughs]
    system, client_id, secret = connected_system_create(
        name=name, kind=kind, scopes=list(scopes), boroughs=found, actor="system:test"
    )
    response = token_for(base_url, client_id, secret)
    assert response.status_code == 200, response.text
    return System(base_url, system, client_id, secret, response.json()["access_token"])
