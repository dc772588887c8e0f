"""The reviewer and compliance pages: inbox, model version, sign, audit trail, exports.

Every page needs a signed-in user and starts from `visible_to`: a record of a project the
user cannot see is 404. Forms post to these views, which call the governance actions; the
actions decide and their refusals are shown on the form (or as a 403 page).
"""

import importlib.util
from datetime import UTC, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import resolve, reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods, require_POST

from governance import audit_chain, review_facts, transitions
from governance.api.views import readable_events
from governance.choices import RequestStatus
from governance.errors import GovernanceError, NotAllowed, PasswordRequired
from governance.forms import AuditFilterForm, ExportForm, SignForm, TransitionRequestForm
from governance.lineage_drawing import neighbourhood
from governance.models import AuditChainHead, TransitionRequest
from governance.signing import digest, request_record
from registry.access import has_project_right
from registry.choices import Direction, ProjectRight
from registry.models import ModelVersion, Project

INBOX_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50
EXPORTS_API = "/api/v1/exports/"
EXPORT_DONE = {"done", "completed", "succeeded", "failed", "error"}


def _role_names(user) -> set[str]:
    return {group.name for group in user.groups.all()}


# --- Review inbox ---------------------------------------------------------------------------


@login_required
def inbox(request):
    """Pending requests the user may sign, oldest first, with each gate at a glance."""
    user = request.user
    pending = (
        TransitionRequest.objects.visible_to(user, ProjectRight.REVIEW)
        .filter(status=RequestStatus.PENDING)
        .exclude(requested_by=user)
        .exclude(signatures__signer=user)
        .select_related("model_version__registered_model__project")
        .order_by("created_at", "id")
    )
    if not user.has_perm("governance.add_signature"):
        pending = pending.none()
    page = Paginator(pending, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = []
    for r in page:
        version = r.model_version
        created_iso, created = review_facts.utc_stamp(r.created_at)
        rows.append(
            {
                "request": r,
                "version": f"{version.registered_model.project.key}/"
                f"{version.registered_model.name} v{version.version}",
                "transition": f"{r.get_from_stage_display()} → {r.get_to_stage_display()}",
                "sign_url": reverse("governance:sign", args=[r.pk]),
                "version_url": reverse("governance:version", args=[r.model_version_id]),
                "created_iso": created_iso,
                "created": created,
                "age": timesince(r.created_at, now),
                "gates": review_facts.gate_rows(r.gate_results),
            }
        )
    return render(request, "pages/inbox.html", {"page": page, "rows": rows})


# --- Model version page ---------------------------------------------------------------------


def _visible_version(user, pk) -> ModelVersion:
    return get_object_or_404(
        ModelVersion.objects.visible_to(user).select_related(
            "registered_model__project",
            "created_by",
            "run__code_version",
            "derived_from__registered_model",
        ),
        pk=pk,
    )


def _evaluation_rows(version, evaluations) -> list[dict]:
    criteria = version.registered_model.project.acceptance_criteria or []
    rows = []
    for evaluation in evaluations:
        split = evaluation.dataset_version.split
        checks = []
        for criterion in criteria:
            if criterion["split"] != split:
                continue
            value = evaluation.metrics.get(criterion["metric"])
            higher = criterion["direction"] == Direction.HIGHER
            met = None
            if value is not None:
                met = value >= criterion["threshold"] if higher else value <= criterion["threshold"]
            checks.append(
                {
                    "metric": criterion["metric"],
                    "value": value,
                    "threshold": criterion["threshold"],
                    "word": "≥" if higher else "≤",
                    "met": met,
                }
            )
        baselines = [
            {
                "name": name.replace("_", " "),
                "values": [
                    {"metric": m, "value": v, "model": evaluation.metrics.get(m)}
                    for m, v in sorted(values.items())
                ],
            }
            for name, values in sorted((evaluation.baselines or {}).items())
            if isinstance(values, dict)
        ]
        rows.append(
            {
                "evaluation": evaluation,
                "metrics": sorted(evaluation.metrics.items()),
                "checks": checks,
                "baselines": baselines,
            }
        )
    return rows


def _timeline(version, requests) -> list[dict]:
    entries = []
    for r in requests:
        r.model_version = version  # the record each signature hashed includes the version
        current_sha = digest(request_record(r))[1] if r.is_open else None
        signatures = [
            {
                "signature": s,
                "words": review_facts.meaning_in_words(s.meaning, r),
                "matches": None if current_sha is None else s.record_sha256 == current_sha,
            }
            for s in r.signatures.all()
        ]
        gates = review_facts.gate_rows(r.gate_results)
        entries.append({"request": r, "signatures": signatures, "gates": gates})
    return entries


def _version_context(request, version, request_form=None) -> dict:
    user = request.user
    project = version.registered_model.project
    requests = list(
        TransitionRequest.objects.filter(model_version=version)
        .select_related("policy")
        .prefetch_related("signatures")
        .order_by("created_at", "id")
    )
    open_request = next((r for r in requests if r.is_open), None)
    evidence_request = open_request or (requests[-1] if requests else None)
    run = version.run
    can_request = user.has_perm("governance.add_transitionrequest") and has_project_right(
        user, project, ProjectRight.CONTRIBUTE
    )
    policy = review_facts.governing_policy(project)
    targets = review_facts.allowed_targets(version, policy) if can_request else []
    if can_request and open_request is None and request_form is None:
        request_form = TransitionRequestForm(targets=targets)
    evaluations = list(
        version.evaluations.select_related("dataset_version__dataset").order_by("-created_at")
    )
    return {
        "version": version,
        "project": project,
        "model": version.registered_model,
        "timeline": _timeline(version, requests),
        "open_request": open_request,
        "evidence_request": evidence_request,
        "evidence": review_facts.gate_rows(evidence_request.gate_results)
        if evidence_request
        else [],
        "run": run,
        "code": run.code_version if run else None,
        "input_datasets": list(run.input_datasets.select_related("dataset")) if run else [],
        "drawing": neighbourhood(version, user),
        "evaluations": _evaluation_rows(version, evaluations),
        "fairness": review_facts.fairness_audits(version),
        "card": [
            (name.replace("_", " ").capitalize(), getattr(version, name))
            for name in ModelVersion.MODEL_CARD_FIELDS
        ],
        "history": review_facts.history_rows(version),
        "policy": policy,
        "request_form": request_form if (open_request is None and targets) else None,
        "can_request": can_request,
        "can_export": exports_available()
        and user.has_perm("governance.add_documentexport")
        and has_project_right(user, project, ProjectRight.EXPORT),
    }


@login_required
def version_page(request, pk):
    """Everything a reviewer needs about one model version, and the request form."""
    version = _visible_version(request.user, pk)
    return render(request, "pages/version.html", _version_context(request, version))


@login_required
@require_POST
def request_transition(request, pk):
    """A data scientist asks for the version to move; the action evaluates the gates."""
    version = _visible_version(request.user, pk)
    if not request.user.has_perm("governance.add_transitionrequest"):
        raise PermissionDenied("Your role does not allow you to request transitions.")
    project = version.registered_model.project
    policy = review_facts.governing_policy(project)
    form = TransitionRequestForm(
        request.POST, targets=review_facts.allowed_targets(version, policy)
    )
    if form.is_valid():
        try:
            created = transitions.request_transition(
                version,
                form.cleaned_data["to_stage"],
                actor=request.user,
                justification=form.cleaned_data["justification"],
            )
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        except GovernanceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Transition to {created.get_to_stage_display()} requested; "
                "the gates were evaluated and reviewers can now sign it.",
            )
            return redirect("governance:version", pk=version.pk)
    context = _version_context(request, version, request_form=form)
    context["request_form"] = form
    return render(request, "pages/version.html", context, status=400)


# --- Sign -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def sign_page(request, pk):
    """Approve or reject a request with a comment and the password (21 CFR 11.200)."""
    user = request.user
    target = get_object_or_404(
        TransitionRequest.objects.visible_to(user)
        .select_related("model_version__registered_model__project", "policy")
        .prefetch_related("signatures"),
        pk=pk,
    )
    project = target.model_version.registered_model.project
    role_names = _role_names(user)
    can_review = has_project_right(user, project, ProjectRight.REVIEW)
    refusal = review_facts.signing_refusal(
        user, target, role_names=role_names, can_review=can_review
    )
    form = SignForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if refusal and user.pk == target.requested_by_id:
            # The button is absent for the requester; the action would refuse anyway.
            raise PermissionDenied(refusal)
        if form.is_valid():
            try:
                transitions.sign(
                    target,
                    signer=user,
                    meaning=form.cleaned_data["meaning"],
                    password=form.cleaned_data["password"],
                    comment=form.cleaned_data["comment"],
                    http_request=request,
                )
            except PasswordRequired as exc:
                form.add_error("password", str(exc))
            except NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            except GovernanceError as exc:
                # e.g. decided or signed meanwhile: the form may be gone, so say it above it.
                messages.error(request, str(exc))
                status = exc.status_code
            else:
                messages.success(request, "Your signature was recorded.")
                return redirect("governance:sign", pk=target.pk)
    if request.method == "POST":
        # A refused signature may have found the request changed meanwhile: show it as it is.
        target = (
            TransitionRequest.objects.select_related(
                "model_version__registered_model__project", "policy"
            )
            .prefetch_related("signatures")
            .get(pk=target.pk)
        )
        refusal = review_facts.signing_refusal(
            user, target, role_names=role_names, can_review=can_review
        )
    current_sha = digest(request_record(target))[1] if target.is_open else None
    signatures = [
        {
            "signature": s,
            "words": review_facts.meaning_in_words(s.meaning, target),
            "matches": None if current_sha is None else s.record_sha256 == current_sha,
        }
        for s in target.signatures.all()
    ]
    mine = next((s for s in signatures if s["signature"].signer_id == user.pk), None)
    context = {
        "req": target,
        "version": target.model_version,
        "project": project,
        "gates": review_facts.gate_rows(target.gate_results),
        "signatures": signatures,
        "mine": mine,
        "refusal": refusal,
        "form": None if refusal else form,
        "approve_words": review_facts.meaning_in_words("approved", target),
        "reject_words": review_facts.meaning_in_words("rejected", target),
        "current_sha": current_sha,
    }
    return render(request, "pages/sign.html", context, status=status)


# --- Compliance -----------------------------------------------------------------------------


def exports_available() -> bool:
    """Whether PDF exports are installed (they arrive with the exports feature)."""
    return importlib.util.find_spec("governance.exports") is not None


def _require_compliance_role(user) -> None:
    if not (
        user.has_perm("governance.view_auditevent")
        or user.has_perm("governance.add_documentexport")
    ):
        raise PermissionDenied("Your role does not give access to the compliance pages.")


def _compliance_context(user, **extra) -> dict:
    head = AuditChainHead.objects.filter(pk=1).first()
    return {
        "exports_available": exports_available(),
        "can_export": user.has_perm("governance.add_documentexport"),
        "can_read_trail": user.has_perm("governance.view_auditevent"),
        "export_form": ExportForm(),
        "head": head,
        **extra,
    }


@login_required
def compliance(request):
    """Exports, the audit trail and its verification, for compliance officers and auditors."""
    _require_compliance_role(request.user)
    return render(request, "pages/compliance.html", _compliance_context(request.user))


@login_required
@require_POST
def verify_chain(request):
    """Recompute the whole audit chain and show the result (and the first broken link)."""
    if not request.user.has_perm("governance.view_auditevent"):
        raise PermissionDenied("Your role does not allow you to verify the audit trail.")
    result = audit_chain.verify()
    return render(
        request,
        "pages/compliance.html",
        _compliance_context(request.user, verification=result, verified_at=timezone.now()),
    )


@login_required
def audit_trail(request):
    """The audit trail the user may read, newest first, filtered and paginated."""
    if not request.user.has_perm("governance.view_auditevent"):
        raise PermissionDenied("Your role does not allow you to read the audit trail.")
    form = AuditFilterForm(request.GET or None)
    events = readable_events(request.user).order_by("-sequence")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["project"]:
            events = events.filter(
                project_id__in=Project.objects.filter(key=data["project"]).values("pk")
            )
        if data["actor"]:
            events = events.filter(actor_name__icontains=data["actor"])
        if data["object_type"]:
            events = events.filter(object_type=data["object_type"])
        if data["object_id"]:
            events = events.filter(object_id=data["object_id"])
        if data["since"]:
            events = events.filter(occurred_at__gte=datetime.combine(data["since"], time.min, UTC))
        if data["until"]:
            end = datetime.combine(data["until"], time.min, UTC) + timedelta(days=1)
            events = events.filter(occurred_at__lt=end)
    elif form.is_bound:
        events = events.none()
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "pages/audit_trail.html",
        {"form": form, "page": page, "query": query.urlencode()},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


# --- Exports (through the exports API, once it exists) ----------------------------------------


def _call_exports_api(request, path: str):
    """Run an exports API view for this request (same user, session and CSRF token)."""
    match = resolve(path)
    response = match.func(request, *match.args, **match.kwargs)
    if hasattr(response, "render"):
        response.render()
    return response


def _exports_unavailable(request):
    return render(
        request,
        "pages/compliance.html",
        _compliance_context(request.user, exports_missing=True),
        status=503,
    )


@login_required
@require_POST
def export_create(request):
    """Ask for a PDF document; the page then follows its progress."""
    _require_compliance_role(request.user)
    if not exports_available():
        return _exports_unavailable(request)
    form = ExportForm(request.POST)
    if not form.is_valid():
        context = _compliance_context(request.user, export_form=form)
        return render(request, "pages/compliance.html", context, status=400)
    response = _call_exports_api(request, EXPORTS_API)
    data = getattr(response, "data", None) or {}
    if response.status_code in (200, 201, 202) and "id" in data:
        return redirect("governance:export", pk=data["id"])
    for message in _messages_of(data) or [f"the export was refused ({response.status_code})"]:
        form.add_error(None, message)
    context = _compliance_context(request.user, export_form=form)
    return render(request, "pages/compliance.html", context, status=response.status_code)


def _messages_of(data) -> list[str]:
    if isinstance(data, dict):
        return [f"{k}: {v}" if k != "detail" else str(v) for k, v in data.items()]
    return [str(data)] if data else []


@login_required
def export_status(request, pk):
    """An export's progress (the page refreshes itself until it is done), with its links.
    The exports API decides who may see it (and answers 404 or 403), so the page answers
    what the API answers."""
    if not exports_available():
        return _exports_unavailable(request)
    response = _call_exports_api(request, f"{EXPORTS_API}{pk}/")
    if response.status_code != 200:
        return _api_refusal(response)
    data = response.data
    done = str(data.get("status", "")).lower() in EXPORT_DONE
    return render(
        request,
        "pages/export.html",
        {
            "export_id": pk,
            "export": data,
            "done": done,
            "download_url": f"{EXPORTS_API}{pk}/download/",
            "verify_url": reverse("governance:export-verify", kwargs={"pk": pk}),
        },
    )


@login_required
def export_verify(request, pk):
    """Recompute a stored PDF's hash through the exports API and show the answer (the API
    decides who may, as for the status page)."""
    if not exports_available():
        return _exports_unavailable(request)
    response = _call_exports_api(request, f"{EXPORTS_API}{pk}/verify/")
    if response.status_code != 200:
        return _api_refusal(response)
    return render(
        request,
        "pages/export.html",
        {
            "export_id": pk,
            "verification": sorted(response.data.items()),
            "download_url": f"{EXPORTS_API}{pk}/download/",
            "done": True,
        },
    )


def _api_refusal(response):
    if response.status_code == 404:
        raise Http404("no such export")
    raise PermissionDenied("; ".join(_messages_of(getattr(response, "data", None))))
