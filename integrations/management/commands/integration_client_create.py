"""Register one of the force's systems as an OAuth 2.0 client and print its credentials once."""

from django.core.management.base import BaseCommand, CommandError

from devices.models import Borough
from integrations.models import SystemKind
from integrations.services import IntegrationError, connected_system_create


class Command(BaseCommand):
    help = (
        "Register a connected system (dispatch, crime recording) with its own OAuth 2.0 client "
        "(client credentials) and print its client id and secret: the secret is shown only now."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. 'CAD (Harrow)'")
        parser.add_argument("--kind", choices=SystemKind.values, required=True)
        parser.add_argument("--scopes", nargs="+", required=True)
        parser.add_argument("--boroughs", nargs="*", default=[], help="borough codes, e.g. QA")
        parser.add_argument("--all-boroughs", action="store_true")

    def handle(self, *args, name, kind, scopes, boroughs, all_boroughs, **options):
        found = list(Borough.objects.filter(code__in=[b.upper() for b in boroughs]))
        if len(found) != len(set(boroughs)):
            raise CommandError(f"unknown borough code among {', '.join(boroughs)}")
        if not found and not all_boroughs:
            raise CommandError("give --boroughs CODE ... or --all-boroughs")
        try:
            system, client_id, secret = connected_system_create(
                name=name,
                kind=kind,
                scopes=scopes,
                boroughs=found,
                all_boroughs=all_boroughs,
                actor="system:integration_client_create",
            )
        except IntegrationError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(f"Connected system {system.name} ({' '.join(system.scopes)})")
        self.stdout.write(f"client_id     {client_id}")
        self.stdout.write(f"client_secret {secret}")
        self.stdout.write(
            "Keep the secret now: only its hash is stored. Tokens: POST /api/v1/oauth/token/"
        )
