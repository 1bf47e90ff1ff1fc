"""Register a receiver of our webhooks and print its signing secret once."""

from django.core.management.base import BaseCommand, CommandError

from devices.models import Borough
from integrations.services import IntegrationError, webhook_subscriber_create
from integrations.webhooks import EVENT_TYPES


class Command(BaseCommand):
    help = "Register a webhook receiver and print its HMAC-SHA256 signing secret (shown only now)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url")
        parser.add_argument("--events", nargs="+", default=EVENT_TYPES, choices=EVENT_TYPES)
        parser.add_argument("--boroughs", nargs="*", default=[])
        parser.add_argument("--all-boroughs", action="store_true")

    def handle(self, *args, name, url, events, boroughs, all_boroughs, **options):
        found = list(Borough.objects.filter(code__in=[b.upper() for b in boroughs]))
        if len(found) != len(set(boroughs)) or not (found or all_boroughs):
            raise CommandError("give known --boroughs CODE ... or --all-boroughs")
        try:
            subscriber, secret = webhook_subscriber_create(
                name=name,
                url=url,
                events=events,
                boroughs=found,
                all_boroughs=all_boroughs,
                actor="system:webhook_subscriber_create",
            )
        except IntegrationError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(f"Webhook subscriber {subscriber.name} -> {subscriber.url}")
        self.stdout.write(f"signing secret {secret}")
