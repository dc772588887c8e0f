"""The Celery task that renders an export (eagerly in process when no broker is set)."""

from celery import shared_task
from celery.signals import worker_process_init
from django.contrib.auth import get_user_model

from config.request_context import acting_as
from governance.exports import services


@shared_task(name="governance.exports.render_export", acks_late=True)
def render_export(export_id: int, *, actor_id: int | None = None, request_id: str = "") -> str:
    """Render and store export `export_id` as the user who asked for it; idempotent."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with acting_as(actor, request_id=request_id, reason="document export"):
        return services.generate_export(export_id)


@worker_process_init.connect
def load_weasyprint(**kwargs) -> None:
    """Import WeasyPrint when a worker process starts (about a second of CPU), so that no
    export pays for it; web processes, which only queue exports, never import it."""
    import weasyprint  # noqa: F401
