from django.core.management.base import BaseCommand, CommandError

from retention.objectlock import object_lock_selfcheck


class Command(BaseCommand):
    help = "Prove that an object version under S3 legal hold cannot be deleted."

    def handle(self, *args, **options):
        ok, message = object_lock_selfcheck()
        if not ok:
            raise CommandError(message)
        self.stdout.write(message)
