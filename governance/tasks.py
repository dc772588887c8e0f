"""Governance's Celery tasks, where a worker's autodiscovery looks for them."""

from governance.exports.tasks import render_export

__all__ = ["render_export"]
