"""Run the retention sweep by hand: `manage.py sweep_retention [--dry-run]`.

Exits non-zero when the run did not finish its work: stopped by its guard, by a storage failure
(what it claimed and did not delete is given back), or failed."""

from django.core.management.base import BaseCommand, CommandError

from retention.models import SweepRun
from retention.sweep import sweep_expired_recordings


class Command(BaseCommand):
    help = "Erase recordings past their retention that no hold keeps (see retention/sweep.py)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="recordings per batch (default BWV_SWEEP_BATCH_SIZE)",
        )
        parser.add_argument(
            "--override-guard",
            metavar="REASON",
            default="",
            help="run even if the blast-radius guard objects; the reason is audited",
        )

    def handle(self, *args, dry_run, batch_size, override_guard, **options):
        run = sweep_expired_recordings(
            dry_run=dry_run,
            batch_size=batch_size,
            triggered_by="manage.py sweep_retention",
            override_reason=override_guard,
        )
        self.stdout.write(
            f"sweep {run.pk}: {run.get_status_display()}; candidates {run.candidates}, "
            f"deleted {run.deleted}, failed {run.failed}, released {run.released}, "
            f"{run.bytes_freed} bytes freed" + (f"; {run.message}" if run.message else "")
        )
        stopped = (
            SweepRun.Status.GUARD_STOPPED,
            SweepRun.Status.STORAGE_FAILED,
            SweepRun.Status.FAILED,
        )
        if run.status in stopped:
            raise CommandError(run.message)
