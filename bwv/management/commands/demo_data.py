"""Load the demo: Harrow staffed as in its roll-out, docks, demo logins, and a few real clips.

Idempotent: a second run finds everything in place and only prints the logins again. The clips go
through the real ingest path (sealed, hashed, probed), so the demo shows what production does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import secrets
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from common.roles import Role
from devices.models import Borough, Camera, CameraStatus, Officer, Rank, Unit
from devices.selectors import dock_authenticate
from devices.services import camera_issue, dock_register
from evidence.ingest import upload_append, upload_create
from evidence.models import Incident, Recording
from evidence.sample_media import make_clip
from review.models import FlagKind
from review.services import recording_flag

FIRST = [
    "Amira",
    "Ben",
    "Chloe",
    "Daniel",
    "Ella",
    "Farid",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kiran",
    "Leah",
    "Mohammed",
    "Nia",
    "Oliver",
    "Priya",
    "Quinn",
    "Ruby",
    "Samir",
    "Tom",
    "Uma",
    "Victor",
    "Wendy",
    "Yusuf",
    "Zara",
]
LAST = [
    "Ahmed",
    "Brown",
    "Chen",
    "Davies",
    "Evans",
    "Francis",
    "Green",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Murphy",
    "Nowak",
    "O'Brien",
    "Patel",
    "Quinn",
    "Roberts",
    "Singh",
    "Taylor",
    "Usman",
    "Walker",
    "Wilson",
    "Young",
]
GO_LIVE = {
    "QA": date(2015, 10, 12),
    "EK": date(2015, 11, 2),
    "LX": date(2015, 11, 16),
    "CW": date(2016, 1, 11),
}
OFFICERS_PER_BOROUGH = 270
DEMO_USERS = [
    # user name, role, rank, borough code
    ("officer", Role.OFFICER, Rank.CONSTABLE, "QA"),
    ("sergeant", Role.CUSTODY_SERGEANT, Rank.SERGEANT, "QA"),
    ("admin", Role.BOROUGH_ADMIN, Rank.STAFF, "QA"),
    ("disclosure", Role.DISCLOSURE_OFFICER, Rank.STAFF, "QA"),
    ("disclosure.second", Role.DISCLOSURE_OFFICER, Rank.STAFF, "QA"),  # approves the first's work
    ("sergeant.camden", Role.CUSTODY_SERGEANT, Rank.SERGEANT, "EK"),
    ("sysadmin", Role.SYSTEM_ADMIN, Rank.STAFF, "QA"),
]


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--clips", type=int, default=5)
        parser.add_argument("--url", default=settings.SITE_URL)

    def handle(self, *args, clips: int, url: str, **options):
        rng = random.Random(2026)  # noqa: S311 -- made-up names, not a secret
        for code, go_live in GO_LIVE.items():
            Borough.objects.filter(code=code).update(go_live_date=go_live)
        harrow = Borough.objects.get(code="QA")
        system = self._users(harrow)
        if not Officer.objects.filter(borough=harrow, user__isnull=True).exists():
            self._staff_harrow(harrow, rng, system)
        dock_key = self._docks(harrow, system)
        if not Recording.objects.exists() and clips:
            self._clips(harrow, clips, system, dock_key)
        if not Incident.objects.exists():
            # The dispatch and crime recording systems' day, through the real API: footage tagged
            # by incident, and a case opened from a crime report with the footage to confirm.
            self.stdout.write("Playing a day of Harrow's incidents and crime reports…")
            call_command("integration_simulate", borough="QA", stdout=self.stdout)
        logins = json.loads((settings.VAR_DIR / "demo_logins.json").read_text())
        self.stdout.write(self.style.SUCCESS(f"\nBWV evidence manager is starting at {url}/\n"))
        self.stdout.write("Demo logins (user name / password / role):")
        for name, password, role in logins:
            self.stdout.write(f"  {name:<16} {password:<22} {role}")
        self.stdout.write(f"API docs: {url}/api/docs/   health: {url}/healthz\n")

    def _users(self, harrow):
        User = get_user_model()
        path = settings.VAR_DIR / "demo_logins.json"
        saved = {row[0]: row[1] for row in json.loads(path.read_text())} if path.exists() else {}
        rows = []
        for n, (username, role, rank, code) in enumerate(DEMO_USERS):
            password = saved.get(username) or f"{username.split('.')[0]}-{secrets.token_hex(4)}"
            user, created = User.objects.get_or_create(username=username)
            if created or username not in saved:
                user.set_password(password)
            user.is_staff = role == Role.SYSTEM_ADMIN
            user.is_superuser = role == Role.SYSTEM_ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            Officer.objects.update_or_create(
                user=user,
                defaults={
                    "collar_number": f"D{n + 1:04d}{code}",
                    "first_name": username.split(".")[0].title(),
                    "last_name": "Demo",
                    "rank": rank,
                    "borough": Borough.objects.get(code=code),
                },
            )
            rows.append([username, password, role.label])
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(rows, f)
        return User.objects.get(username="sysadmin")

    @transaction.atomic
    def _staff_harrow(self, harrow, rng, actor):
        self.stdout.write("Staffing Harrow: 270 officers and PCSOs with cameras issued…")
        teams = [
            Unit.objects.get_or_create(name=n, borough=harrow)[0]
            for n in ("Response Team A", "Response Team B", "Neighbourhoods")
        ]
        Unit.objects.get_or_create(
            name="Overt Firearms Command (MO19)", borough=None, defaults={"specialist": True}
        )
        ranks = [Rank.PCSO] * 40 + [Rank.SERGEANT] * 25 + [Rank.INSPECTOR] * 5
        ranks += [Rank.CONSTABLE] * (OFFICERS_PER_BOROUGH - len(ranks))
        now = timezone.now()
        for i, rank in enumerate(ranks, start=1):
            officer = Officer.objects.create(
                collar_number=f"{i:03d}QA",
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
                rank=rank,
                borough=harrow,
                unit=teams[i % len(teams)],
            )
            camera = Camera.objects.create(
                serial=f"BWV-QA-{i:05d}",
                model="Axon Body 3",
                firmware="1.27.3",
                borough=harrow,
                status=CameraStatus.IN_STOCK,
            )
            camera_issue(
                camera=camera,
                officer=officer,
                actor=actor,
                at=now - timedelta(days=60),
                note="roll-out issue",
            )
        for i in range(OFFICERS_PER_BOROUGH + 1, OFFICERS_PER_BOROUGH + 21):
            # Spares for specialist departments, half of them a shared pool checked out per shift.
            Camera.objects.create(
                serial=f"BWV-QA-{i:05d}",
                model="Axon Body 3",
                firmware="1.27.3",
                borough=harrow,
                shared_pool=i % 2 == 0,
            )
        # The demo officer wears a camera too, so their own footage shows.
        demo = Officer.objects.get(user__username="officer")
        camera = Camera.objects.create(
            serial="BWV-QA-DEMO1", model="Axon Body 3", firmware="1.27.3", borough=harrow
        )
        camera_issue(camera=camera, officer=demo, actor=actor, at=now - timedelta(days=60))

    def _docks(self, harrow, actor) -> str:
        path = settings.VAR_DIR / "demo_dock_key"
        if path.exists():
            return path.read_text().strip()
        key = ""
        for station, name in (
            ("Harrow police station", "Dock 1"),
            ("Harrow police station", "Dock 2"),
            ("South Harrow", "Dock 1"),
        ):
            _dock, dock_key = dock_register(borough=harrow, station=station, name=name, actor=actor)
            key = key or dock_key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key

    def _clips(self, harrow, count, actor, dock_key):
        self.stdout.write(f"Ingesting {count} demo clips through the real ingest path…")
        dock = dock_authenticate(key=dock_key)
        camera = Camera.objects.get(serial="BWV-QA-DEMO1")
        now = timezone.now().replace(microsecond=0)
        recordings = []
        for i in range(count):
            start = now - timedelta(days=i * 6 + 1, hours=i)
            data = make_clip(seconds=6 + i, tone_hz=330 + 110 * i, created=start)
            meta = {
                "camera": camera.serial,
                "start": start.isoformat(),
                "end": (start + timedelta(seconds=6 + i)).isoformat(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "filename": f"CLIP{i + 1:04d}.MP4",
                "gps": "51.5797,-0.3350",
            }
            upload = upload_create(dock=dock, length=len(data), metadata=meta)
            upload = upload_append(
                upload_id=upload.id,
                dock=dock,
                offset=0,
                body=io.BytesIO(data),
                content_length=len(data),
            )
            recordings.append(Recording.objects.get(pk=upload.recording_ref))
        sergeant = get_user_model().objects.get(username="sergeant")
        recording_flag(
            recording=recordings[-1],
            kind=FlagKind.EVIDENCE,
            actor=sergeant,
            crime_reference="5201234/26",
            reason="Assault on an emergency worker; footage shows the arrest",
        )
