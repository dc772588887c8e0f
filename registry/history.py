"""What every historical row carries besides django-simple-history's own fields.

The acting user's printed name is copied as text so the record survives the account, and the
request id ties together every row written by one request (NetBox's change logging).
"""

from django.db import models
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

from config.request_context import current, current_user


class TracedHistory(models.Model):
    """Abstract base added to every historical model."""

    history_actor_name = models.CharField(max_length=300, blank=True, default="")
    history_request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True


def printed_name(user) -> str:
    """The name shown on records and signatures: full name, else the username."""
    if user is None:
        return "system"
    return (user.get_full_name() or user.get_username()).strip()


@receiver(pre_create_historical_record)
def _stamp_history(sender, instance, history_instance, **kwargs):
    if not isinstance(history_instance, TracedHistory):
        return
    user = history_instance.history_user or current_user()
    if history_instance.history_user_id is None and user is not None:
        history_instance.history_user = user
    history_instance.history_actor_name = printed_name(user)
    history_instance.history_request_id = current().request_id
    if not history_instance.history_change_reason and current().reason:
        history_instance.history_change_reason = current().reason
