"""The test directory: the real OpenID provider `make test` starts on loopback
(devtools/oidc_provider, node-oidc-provider), driven as a force's directory would be administered.

Clients are registered with the provider's own dynamic client registration; accounts (password,
released claims, the `amr`/`acr` their sign-in asserts, the life of their ID tokens) through its
test directory; faults on its next token response through its test controls.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urljoin, urlparse

import pytest
import requests

PASSWORD = "directory-password-7"
ROLE_MAP = {
    "bwv-sergeants-qa": {"role": "custody_sergeant", "borough": "QA"},
    "bwv-sergeants-ek": {"role": "custody_sergeant", "borough": "EK"},
    "bwv-officers-qa": {"role": "officer", "borough": "QA"},
    "bwv-disclosure": {"role": "disclosure_officer"},
    "BWV.SystemAdmin": {"role": "system_admin"},
}


class TestDirectory:
    __test__ = False

    def __init__(self):
        try:
            self.issuer = os.environ["BWV_TEST_OIDC_ISSUER"]
            self.control = os.environ["BWV_TEST_OIDC_CONTROL_SECRET"]
        except KeyError:
            pytest.fail("no test OpenID provider: run the tests with `make test` (localservices)")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.control}"

    def register_client(self, base_url: str) -> tuple[str, str]:
        """A client of the provider for the site at `base_url`: (client id, client secret)."""
        answer = self.http.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": [f"{base_url}/accounts/directory/callback/"],
                "post_logout_redirect_uris": [f"{base_url}/accounts/signed-out/"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        )
        answer.raise_for_status()
        data = answer.json()
        return data["client_id"], data["client_secret"]

    def switch_on(self, settings, base_url: str, name: str = "Test Constabulary") -> None:
        """Register a client for the site at `base_url` and switch directory sign-in on there."""
        self.clear_faults()
        self.client_id, self.client_secret = self.register_client(base_url)
        settings.BWV_OIDC_ISSUER = self.issuer
        settings.BWV_OIDC_CLIENT_ID = self.client_id
        settings.BWV_OIDC_CLIENT_SECRET = self.client_secret
        settings.BWV_OIDC_NAME = name
        settings.BWV_OIDC_SCOPES = "openid profile email groups"
        settings.BWV_OIDC_ROLE_MAP = ROLE_MAP
        settings.BWV_OIDC_ROLE_CLAIMS = ["groups", "roles"]

    def account(
        self,
        *,
        groups=(),
        roles=(),
        amr=("pwd", "otp", "mfa"),
        acr: str | None = None,
        id_token_ttl: int | None = None,
        login: str | None = None,
        **claims,
    ) -> str:
        """Put an account in the directory (or change it); returns its login, which is also its
        subject."""
        login = login or f"user-{uuid.uuid4().hex[:12]}"
        released = {
            "preferred_username": f"{login}@test-force.example",
            "email": f"{login}@test-force.example",
            "given_name": "Sam",
            "family_name": "Directory",
            "groups": list(groups),
            "roles": list(roles),
            **claims,
        }
        answer = self.http.put(
            f"{self.issuer}/_test/accounts/{login}",
            json={
                "password": PASSWORD,
                "claims": released,
                "amr": list(amr) if amr is not None else None,
                "acr": acr,
                "id_token_ttl": id_token_ttl,
            },
            timeout=10,
        )
        answer.raise_for_status()
        return login

    def fault(self, kind: str, **options) -> None:
        """Arm a fault on the provider's next token response (see devtools/oidc_provider)."""
        self.http.post(
            f"{self.issuer}/_test/faults", json={"kind": kind, **options}, timeout=10
        ).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete(f"{self.issuer}/_test/faults", timeout=10).raise_for_status()

    def sign_in(self, authorize_url: str, login: str, password: str = PASSWORD) -> str:
        """Sign in at the provider as a browser would, from the authorisation URL the site sent
        us to; returns the URL the provider sends the browser back to (the site's callback)."""
        browser = requests.Session()
        answer = browser.get(authorize_url, allow_redirects=False, timeout=10)
        url = self._follow(browser, answer)
        if not url.startswith(self.issuer):
            return url
        uid = urlparse(url).path.rstrip("/").split("/")[-1]
        answer = browser.post(
            f"{self.issuer}/interaction/{uid}/login",
            data={"login": login, "password": password},
            allow_redirects=False,
            timeout=10,
        )
        return self._follow(browser, answer)

    def _follow(self, browser: requests.Session, answer: requests.Response) -> str:
        """Follow the provider's redirects until one leads off the provider (or a page)."""
        while answer.is_redirect:
            url = urljoin(answer.url, answer.headers["Location"])
            if not url.startswith(self.issuer):
                return url
            answer = browser.get(url, allow_redirects=False, timeout=10)
        return answer.url
