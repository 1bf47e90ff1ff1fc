"""Sign the audit chain's head now and store the checkpoint (beat does this every 10 minutes).

python manage.py audit_checkpoint
python manage.py audit_checkpoint --public-key   # print the key that verifies checkpoints
"""

from django.core.management.base import BaseCommand

from evidence.audit import checkpoint_write, key_id, public_key_b64, public_key_bytes


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain's head."

    def add_arguments(self, parser):
        parser.add_argument("--public-key", action="store_true",
                            help="print the public key (base64) and its id, and write nothing")  # fmt: skip

    def handle(self, *args, public_key: bool, **options):
        if public_key:
            self.stdout.write(f"{public_key_b64()}  (key id {key_id(public_key_bytes())})")
            return
        checkpoint = checkpoint_write()
        if checkpoint is None:
            self.stdout.write("no new events since the last checkpoint: nothing written")
        else:
            self.stdout.write(
                f"checkpoint {checkpoint.name}: event {checkpoint.seq} {checkpoint.hash}"
            )
