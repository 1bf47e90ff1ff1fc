"""Sign the audit log's tree head now and store it (beat does this every 10 minutes).

python manage.py audit_checkpoint
python manage.py audit_checkpoint --public-key          # print the key that verifies heads
python manage.py audit_checkpoint --consistency-from N  # prove the log of now extends head N
"""

import json

from django.core.management.base import BaseCommand, CommandError

from custody.audit import (
    canonical_json,
    checkpoint_write,
    consistency_document,
    key_id,
    public_key_b64,
    public_key_bytes,
)


class Command(BaseCommand):
    help = "Write a signed tree head of the audit log, or prove that one extends another."

    def add_arguments(self, parser):
        parser.add_argument(
            "--public-key",
            action="store_true",
            help="print the public key (base64) and its id, and write nothing",
        )
        parser.add_argument(
            "--consistency-from",
            type=int,
            metavar="SIZE",
            help="print (JSON) the signed head of SIZE events, a signed head of the log now, and "
            "the proof that the later extends the earlier, for tools/verify_bundle.py",
        )
        parser.add_argument(
            "--to", type=int, metavar="SIZE", help="with --consistency-from: a later stored head"
        )

    def handle(self, *args, public_key: bool, consistency_from: int | None, to, **options):
        if public_key:
            self.stdout.write(f"{public_key_b64()}  (key id {key_id(public_key_bytes())})")
            return
        if consistency_from is not None:
            try:
                document = consistency_document(consistency_from, to)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps(json.loads(canonical_json(document)), indent=2))
            return
        checkpoint = checkpoint_write()
        if checkpoint is None:
            self.stdout.write("no new events since the last checkpoint: nothing written")
        else:
            self.stdout.write(
                f"signed tree head {checkpoint.name}: {checkpoint.seq} events, root "
                f"{checkpoint.root_hash}, chain head {checkpoint.hash}"
            )
