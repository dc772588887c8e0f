"""The dashboard: the model inventory a user may see, as model-risk management reads it.

For each model: project, risk tier, the version in production, versions awaiting review, the
last change, its developer (who registered the version), its validator (who last approved it
into production) and the next review date, derived as that approval + 365 days (nothing is
stored for it). A fixed number of queries whatever the number of models.
"""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render

from governance.choices import RequestStatus, SignatureMeaning
from governance.models import TransitionRequest
from registry.choices import Stage
from registry.history import printed_name
from registry.models import ModelVersion, RegisteredModel

REVIEW_INTERVAL = timedelta(days=365)
PAGE_SIZE = 50


def _inventory(user):
    versions = ModelVersion.objects.filter(registered_model=OuterRef("pk"))
    production = versions.filter(stage=Stage.PRODUCTION).order_by("-version").values("pk")[:1]
    latest = versions.order_by("-version").values("pk")[:1]
    last_change = versions.order_by("-updated_at").values("updated_at")[:1]
    awaiting = (
        TransitionRequest.objects.filter(
            model_version__registered_model=OuterRef("pk"), status=RequestStatus.PENDING
        )
        .order_by()
        .values("model_version__registered_model")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        RegisteredModel.objects.visible_to(user)
        .select_related("project")
        .annotate(
            production_id=Subquery(production),
            latest_id=Subquery(latest),
            last_version_change=Subquery(last_change),
            awaiting_review=Coalesce(Subquery(awaiting, output_field=IntegerField()), 0),
        )
        .order_by("project__key", "name")
    )


def _approvals_into_production(version_ids) -> dict:
    """{version id: (approved at, validator's printed name)} of each version's latest
    applied request into production and its last approving signature."""
    applied = (
        TransitionRequest.objects.filter(
            model_version_id__in=version_ids,
            to_stage=Stage.PRODUCTION,
            status=RequestStatus.APPLIED,
        )
        .prefetch_related("signatures")
        .order_by("model_version_id", "decided_at")
    )
    found = {}
    for request in applied:
        approvals = [s for s in request.signatures.all() if s.meaning == SignatureMeaning.APPROVED]
        validator = approvals[-1].printed_name if approvals else ""
        found[request.model_version_id] = (request.decided_at, validator)
    return found


@login_required
def dashboard(request):
    """Every model the user may see, with what a model-risk manager asks about it."""
    page = Paginator(_inventory(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    models = list(page)
    wanted = {m.production_id or m.latest_id for m in models} - {None}
    versions = {
        v.pk: v for v in ModelVersion.objects.filter(pk__in=wanted).select_related("created_by")
    }
    approvals = _approvals_into_production([m.production_id for m in models if m.production_id])
    rows = []
    for model in models:
        shown = versions.get(model.production_id or model.latest_id)
        approved_at, validator = approvals.get(model.production_id, (None, ""))
        last_change = max(
            (t for t in (model.updated_at, model.last_version_change) if t is not None),
            default=None,
        )
        rows.append(
            {
                "model": model,
                "production": versions.get(model.production_id),
                "latest_id": model.latest_id,
                "developer": printed_name(shown.created_by) if shown else "",
                "validator": validator,
                "approved_at": approved_at,
                "next_review": approved_at + REVIEW_INTERVAL if approved_at else None,
                "last_change": last_change,
            }
        )
    return render(request, "pages/dashboard.html", {"page": page, "rows": rows})
