"""Walk the audit chain, its Merkle tree and its signed tree heads; exit 1 and say what is wrong
if anything is.

python manage.py audit_verify

Each run appends its outcome to the chain (`audit.verified`, with the events checked and what was
found), so the system admins' home page shows when the chain was last verified and whether it held.
"""

from django.core.management.base import BaseCommand

from custody.audit import audit_verify
from custody.selectors import VERIFIED_ACTION
from custody.services import audit_record


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and Merkle tree against its signed tree heads."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="processes reading and hashing (default: one per CPU, up to 4)",
        )

    def handle(self, *args, workers: int | None, **options):
        report = audit_verify(workers=workers)
        audit_record(
            actor="system:audit-verify",
            action=VERIFIED_ACTION,
            object_type="custody.auditchain",
            object_id=str(report.head_seq),
            detail={
                "ok": report.ok,
                "events": report.events,
                "head_seq": report.head_seq,
                "findings": [f"{f.kind}: {f.message}" for f in report.findings][:20],
            },
        )
        last = report.last_checkpoint
        old = report.chain_only_checkpoints
        self.stdout.write(
            f"{report.events} events checked, chain head at {report.head_seq}; "
            f"{report.checkpoints} signed checkpoints"
            + (f" ({old} of them in the format before the tree: chain head only)" if old else "")
            + (f", the last at event {last.seq} signed {last.signed_at}" if last else "")
        )
        if report.ok:
            self.stdout.write(self.style.SUCCESS("audit chain intact, and its Merkle tree"))
            if last is None or last.seq < report.head_seq:
                since = last.seq if last else 0
                self.stdout.write(
                    f"note: events after {since} are not yet covered by a signed checkpoint"
                )
            return
        for finding in report.findings:
            self.stderr.write(self.style.ERROR(f"{finding.kind}: {finding.message}"))
        raise SystemExit(1)
