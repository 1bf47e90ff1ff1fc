"""List storage objects with no recording and recordings whose objects are missing."""

from django.core.management.base import BaseCommand, CommandError

from retention.reconcile import reconcile


class Command(BaseCommand):
    help = "Compare the media store with the database; exit 1 if they disagree."

    def handle(self, *args, **options):
        counts = {"orphan_object": 0, "missing_object": 0}
        for finding in reconcile():
            counts[finding.kind] += 1
            owner = f" (recording {finding.recording})" if finding.recording else ""
            self.stdout.write(f"{finding.kind}\t{finding.key}{owner}\t{finding.detail}")
        self.stdout.write(
            f"{counts['orphan_object']} orphan object(s), {counts['missing_object']} missing object(s)"
        )
        if any(counts.values()):
            raise CommandError("storage and database disagree")
