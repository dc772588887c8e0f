"""`manage.py expire_transition_requests`: close the pending transition requests that were not
decided within their policy's `request_expiry_days`, as the system, each with its audit event.

Celery beat runs the same action hourly (`CELERY_BEAT_SCHEDULE` in config/settings.py); this
command is for deployments without beat (e.g. cron) and for running it once by hand. Running
it again expires nothing more.
"""

from django.core.management.base import BaseCommand

from governance import transitions


class Command(BaseCommand):
    help = "Expire the pending transition requests older than their policy allows."

    def handle(self, *args, **options):
        expired = transitions.expire_stale_requests()
        for request in expired:
            self.stdout.write(f"expired: {request} (request {request.pk})")
        self.stdout.write(f"{len(expired)} transition request(s) expired")
