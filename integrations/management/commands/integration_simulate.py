"""Play a day of a borough's dispatch incidents, crime reports and outcomes through the real API.

Two connected systems (a dispatch and a crime recording system of the borough) are registered
once, their credentials kept in the embedded setup's folder (mode 600); each run takes real tokens
from the token endpoint and calls the operations over HTTP, as the force's systems would. With no
--url, the command serves the site itself on a loopback port for its calls (the demo loads before
the web server starts).

The day: incidents around the borough's footage of that day (the officer who recorded it, with a
colleague or two), and a few that nobody filmed; a crime report naming the first incident with
footage, whose officer in the case is the officer who filmed it (the case opens with that footage
as candidates); and a second report whose outcome is sent straight after (charged). Versions are
the time of the run, so a second run updates what the first sent.
"""

from __future__ import annotations

import json
import os
import random
import threading
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.wsgi import get_wsgi_application
from django.utils import timezone

from devices.models import Borough, Officer
from evidence.models import Recording, RecordingState
from integrations.models import ConnectedSystem
from integrations.services import connected_system_create, connected_system_new_secret

ACTOR = "system:integration_simulate"
SYSTEMS = {
    "dispatch": ("incidents:write",),
    "crime_recording": ("crime_reports:write", "outcomes:write", "evidence:read"),
}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def _serve_site():
    """The site on a loopback port for the length of the block (a thread of this process)."""
    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=WSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class Command(BaseCommand):
    help = "Play a day of incidents, crime reports and outcomes for a borough through the real API."

    def add_arguments(self, parser):
        parser.add_argument("--borough", default="QA", help="borough code (the demo's: QA)")
        parser.add_argument(
            "--day",
            type=date.fromisoformat,
            help="YYYY-MM-DD (default: the day of the newest clip)",
        )
        parser.add_argument("--url", default="", help="the running site (default: serve it here)")

    def handle(self, *args, borough: str, day: date | None, url: str, **options):
        found = Borough.objects.filter(code=borough.upper()).first()
        if found is None:
            raise CommandError(f"no borough has the code {borough!r}")
        clients = {kind: self._client(found, kind) for kind in SYSTEMS}
        day = day or self._busiest_day(found)
        if url:
            self._play(url.rstrip("/"), found, day, clients)
        else:
            with _serve_site() as served:
                self._play(served, found, day, clients)

    # -- The connected systems -----------------------------------------------------------------

    def _client(self, borough: Borough, kind: str) -> tuple[str, str]:
        """The client id and secret of the borough's simulated system of `kind`."""
        path = settings.VAR_DIR / "simulated_systems.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        name = f"Simulated {kind.replace('_', ' ')} ({borough.code})"
        system = ConnectedSystem.objects.filter(name=name).first()
        if system is not None and name in saved:
            return saved[name]["client_id"], saved[name]["secret"]
        if system is None:
            system, client_id, secret = connected_system_create(
                name=name, kind=kind, scopes=list(SYSTEMS[kind]), boroughs=[borough], actor=ACTOR
            )
        else:  # registered before, its secret lost with the folder: a new one
            client_id = system.application.client_id
            secret = connected_system_new_secret(system=system, actor=ACTOR)
        saved[name] = {"client_id": client_id, "secret": secret}
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(saved, f)
        return client_id, secret

    def _busiest_day(self, borough: Borough) -> date:
        newest = (
            Recording.objects.filter(borough=borough, state=RecordingState.AVAILABLE)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        return timezone.localdate(newest) if newest else timezone.localdate() - timedelta(days=1)

    # -- The day -------------------------------------------------------------------------------

    def _play(self, url: str, borough: Borough, day: date, clients: dict) -> None:
        tokens = {kind: self._token(url, *credentials) for kind, credentials in clients.items()}
        rng = random.Random(f"{borough.code}{day}")  # noqa: S311 -- made-up incidents, no secret
        version = int(timezone.now().timestamp() * 1000)
        incidents = self._incidents(borough, day, rng)
        for incident in incidents:
            # What the dispatch system knows of it: not what the simulation adds for its reports.
            sent = {k: v for k, v in incident.items() if k not in ("classification", "filmed_by")}
            self._send(url, tokens["dispatch"], "incidents/", {**sent, "version": version})
        filmed = [i for i in incidents if i["filmed_by"]]
        reports = []
        if filmed:
            reports.append((filmed[0], filmed[0]["filmed_by"]))
        unfilmed = [i for i in incidents if i not in filmed[:1]]
        if unfilmed:
            reports.append((unfilmed[0], ""))
        for n, (incident, oic) in enumerate(reports):
            reference = f"52{rng.randrange(10**4, 10**5)}/{day:%y}"
            self._send(
                url,
                tokens["crime_recording"],
                "crime-reports/",
                {
                    "crime_reference": reference,
                    "version": version,
                    "borough": borough.code,
                    "classification": incident["classification"],
                    "status": "under investigation",
                    "officer_in_case": oic,
                    "incidents": [incident["reference"]],
                },
            )
            if n == 1:
                self._send(
                    url,
                    tokens["crime_recording"],
                    "outcomes/",
                    {
                        "crime_reference": reference,
                        "version": version,
                        "outcome": "charged",
                        "decided_on": day.isoformat(),
                    },
                )

    def _incidents(self, borough: Borough, day: date, rng: random.Random) -> list[dict]:
        start = timezone.make_aware(datetime.combine(day, time.min))
        end = min(start + timedelta(days=1), timezone.now())
        clips = list(
            Recording.objects.filter(
                borough=borough,
                state=RecordingState.AVAILABLE,
                officer__isnull=False,
                clock_suspect=False,
                started_at__gte=start,
                started_at__lt=end,
            )
            .select_related("officer")
            .order_by("started_at")[:20]
        )
        officers = list(
            Officer.objects.filter(borough=borough, user__isnull=True).order_by("collar_number")
        )
        kinds = [
            ("I", "Assault occasioning actual bodily harm"),
            ("I", "Robbery of personal property"),
            ("S", "Theft from a motor vehicle"),
            ("S", "Criminal damage"),
            ("E", "Public order offence"),
        ]
        streets = ["Station Road", "College Road", "Northolt Road", "Greenford Road", "High Street"]
        incidents, serial = [], rng.randrange(1000, 5000)
        # Opened early enough that the officer who filmed had arrived before the clip started.
        times = [clip.started_at - timedelta(minutes=rng.randrange(15, 30)) for clip in clips]
        spare = max(3, 8 - len(clips))
        span = max(int((end - start).total_seconds()) - 3 * 3600, 3600)
        latest = timezone.now() - timedelta(hours=3)
        times += [min(start + timedelta(seconds=rng.randrange(span)), latest) for _ in range(spare)]
        filmed_by = [clip.officer for clip in clips] + [None] * spare
        for opened, filmer in zip(times, filmed_by, strict=True):
            serial += rng.randrange(1, 40)
            grade, classification = rng.choice(kinds)
            sent = [filmer] if filmer else []
            sent += rng.sample(officers, k=min(len(officers), rng.randrange(1, 3)))
            arrived = opened + timedelta(minutes=rng.randrange(3, 12))
            cleared = arrived + timedelta(minutes=rng.randrange(40, 120))
            incidents.append(
                {
                    "reference": f"CAD {serial}/{opened:%d%b%y}".upper(),
                    "borough": borough.code,
                    "opened_at": opened.isoformat(),
                    "closed_at": min(cleared + timedelta(minutes=10), timezone.now()).isoformat(),
                    "location": f"{rng.randrange(1, 200)} {rng.choice(streets)}",
                    "grade": grade,
                    "officers": [
                        {
                            "collar_number": o.collar_number,
                            "arrived_at": arrived.isoformat(),
                            "cleared_at": min(cleared, timezone.now()).isoformat(),
                        }
                        for o in dict.fromkeys(sent)
                    ],
                    "classification": classification,
                    "filmed_by": filmer.collar_number if filmer else "",
                }
            )
        return incidents

    # -- HTTP ----------------------------------------------------------------------------------

    def _token(self, url: str, client_id: str, secret: str) -> str:
        response = requests.post(
            f"{url}/api/v1/oauth/token/",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=30,
        )
        if response.status_code != 200:
            raise CommandError(f"the token endpoint refused the simulated system: {response.text}")
        return response.json()["access_token"]

    def _send(self, url: str, token: str, path: str, body: dict) -> None:
        response = requests.post(
            f"{url}/api/v1/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        key = body.get("reference") or body.get("crime_reference")
        if response.status_code >= 400:
            raise CommandError(f"{path} {key}: {response.status_code} {response.text}")
        detail = response.json()
        self.stdout.write(f"{path:<15} {key:<22} {detail['result']:<9} {detail['detail']}")
