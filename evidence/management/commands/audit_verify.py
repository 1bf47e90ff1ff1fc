"""Walk the audit chain and its signed checkpoints; exit 1 and say what is wrong if anything is.

python manage.py audit_verify
"""

from django.core.management.base import BaseCommand

from evidence.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain against its signed checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None,
                            help="processes reading and hashing (default: one per CPU, up to 4)")  # fmt: skip

    def handle(self, *args, workers: int | None, **options):
        report = audit_verify(workers=workers)
        last = report.last_checkpoint
        self.stdout.write(
            f"{report.events} events checked, chain head at {report.head_seq}; "
            f"{report.checkpoints} signed checkpoints"
            + (f", the last at event {last.seq} signed {last.signed_at}" if last else "")
        )
        if report.ok:
            self.stdout.write(self.style.SUCCESS("audit chain intact"))
            if last is None or last.seq < report.head_seq:
                since = last.seq if last else 0
                self.stdout.write(
                    f"note: events after {since} are not yet covered by a signed checkpoint"
                )
            return
        for finding in report.findings:
            self.stderr.write(self.style.ERROR(f"{finding.kind}: {finding.message}"))
        raise SystemExit(1)
