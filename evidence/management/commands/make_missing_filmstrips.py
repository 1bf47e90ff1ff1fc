"""Make the filmstrips that recordings ingested before filmstrips existed (or whose task was lost)
do not have. Safe to run again: a recording that has its filmstrip is left alone."""

from collections import Counter

from django.core.management.base import BaseCommand

from evidence.filmstrip import recording_filmstrip_make
from evidence.models import Recording, RecordingState
from evidence.tasks import recording_filmstrip_make_task


class Command(BaseCommand):
    help = (
        "Queue (or, with --now, make here) the filmstrip of each available recording without one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", action="store_true", help="make them in this process instead of queuing them"
        )
        parser.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")

    def handle(self, *args, now: bool, limit: int, **options):
        ids = (
            Recording.objects.filter(state=RecordingState.AVAILABLE, filmstrip_key="")
            .order_by("id")
            .values_list("id", flat=True)
        )
        if limit:
            ids = ids[:limit]
        outcomes: Counter[str] = Counter()
        for recording_id in ids.iterator(chunk_size=1000):
            if now:
                outcomes[recording_filmstrip_make(recording_id=recording_id)] += 1
            else:
                recording_filmstrip_make_task.delay(str(recording_id))
                outcomes["queued"] += 1
        summary = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "none missing"
        self.stdout.write(f"Filmstrips: {summary}.")
