"""The reviewer and compliance pages, without a browser: who sees what, and what forms do."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from governance import transitions
from governance.models import AuditEvent, Signature, TransitionRequest
from registry import services as registry
from registry.choices import ProjectRight
from tests import factories
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence
from tests.pages.builders import login, pending_requests, promote

pytestmark = pytest.mark.django_db

# The same bound holds whatever the number of rows: pages query a fixed number of times.
INBOX_QUERIES = 10
VERSION_PAGE_QUERIES = 20
DASHBOARD_QUERIES = 10


@pytest.fixture
def version(project, owner):
    version, _ = version_with_evidence(project, owner)
    return version


@pytest.fixture
def pending(version, owner):
    return transitions.request_transition(
        version, "validation", actor=owner, justification="the card and lineage are complete"
    )


def page(client, user, url):
    return login(client, user).get(url)


def text(response) -> str:
    return response.content.decode()


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, needs_pk",
    [
        ("registry:dashboard", False),
        ("governance:inbox", False),
        ("governance:version", True),
        ("governance:sign", True),
        ("governance:compliance", False),
        ("governance:audit-trail", False),
    ],
)
def test_anonymous_visitor_is_sent_to_the_login_page(client, pending, name, needs_pk):
    pk = pending.model_version_id if name == "governance:version" else pending.pk
    url = reverse(name, kwargs={"pk": pk} if needs_pk else None)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_renders_a_form_with_csrf(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in text(response)
    assert 'name="password"' in text(response)


def test_outsider_gets_404_for_the_version_page(client, outsider, version):
    response = page(client, outsider, reverse("governance:version", args=[version.pk]))
    assert response.status_code == 404
    assert "no access" in text(response)
    assert version.registered_model.name not in text(response)


def test_outsider_gets_404_for_the_sign_page(client, outsider, pending):
    response = page(client, outsider, reverse("governance:sign", args=[pending.pk]))
    assert response.status_code == 404


def test_unknown_url_gets_the_404_page(client, reviewer):
    response = page(client, reviewer, "/no/such/page/")
    assert response.status_code == 404
    assert "Not found (404)" in text(response)


def test_post_without_csrf_token_is_refused(pending, reviewer):
    client = login(Client(enforce_csrf_checks=True), reviewer)
    response = client.post(
        reverse("governance:sign", args=[pending.pk]),
        {"meaning": "approved", "password": PASSWORD},
    )
    assert response.status_code == 403
    assert not Signature.objects.exists()


# --- Dashboard --------------------------------------------------------------------------------


def test_dashboard_lists_visible_models_only(client, reviewer, version, other_project, outsider):
    hidden, _ = version_with_evidence(other_project, outsider)
    body = text(page(client, reviewer, reverse("registry:dashboard")))
    assert version.registered_model.name in body
    assert hidden.registered_model.name not in body


def test_dashboard_shows_production_version_developer_validator_and_next_review(
    client, owner, reviewer
):
    project = factories.project(owner, key="minimal-use", risk_tier="minimal")
    factories.grant(project, reviewer, "view", "review")
    version, _ = version_with_evidence(project, owner)
    applied = promote(
        version,
        ["validation", "approved", "production"],
        requester=owner,
        signers=[reviewer],
    )
    body = text(page(client, owner, reverse("registry:dashboard")))
    assert f"v{version.version}</a>" in body
    assert "Olive Tester" in body  # developer: who registered the version
    assert "Rory Tester" in body  # validator: who approved it into production
    next_review = applied.decided_at + timedelta(days=365)
    assert next_review.strftime("%Y-%m-%d") in body
    assert "approval + 365 days" in body


def test_dashboard_counts_versions_awaiting_review(client, owner, project, pending):
    response = page(client, owner, reverse("registry:dashboard"))
    row = next(
        r
        for r in response.context["rows"]
        if r["model"].pk == pending.model_version.registered_model_id
    )
    assert row["model"].awaiting_review == 1


@pytest.mark.parametrize("models", [1, 10])
def test_dashboard_query_count_does_not_grow_with_models(
    client, owner, project, models, django_assert_max_num_queries
):
    for _ in range(models):
        version_with_evidence(project, owner, evaluate=False)
    login(client, owner)
    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        assert client.get(reverse("registry:dashboard")).status_code == 200


# --- Review inbox -----------------------------------------------------------------------------


def test_reviewer_sees_pending_request_with_requester_justification_and_gates(
    client, reviewer, pending
):
    body = text(page(client, reviewer, reverse("governance:inbox")))
    assert reverse("governance:sign", args=[pending.pk]) in body
    assert "Olive Tester" in body
    assert "the card and lineage are complete" in body
    assert "Lineage is complete" in body and "Pass" in body
    assert "Approvals" in body and "Fail" in body


def test_requester_does_not_find_own_request_in_inbox(client, owner, pending):
    body = text(page(client, owner, reverse("governance:inbox")))
    assert reverse("governance:sign", args=[pending.pk]) not in body
    assert "Nothing is waiting" in body


def test_inbox_lists_oldest_first(client, reviewer, project, owner):
    first, second = pending_requests(project, owner, 2)
    response = page(client, reviewer, reverse("governance:inbox"))
    assert [row["request"].pk for row in response.context["rows"]] == [first.pk, second.pk]


def test_inbox_hides_requests_the_reviewer_already_signed(client, project, owner, reviewer):
    request = transitions.request_transition(
        version_with_evidence(project, owner, card=False)[0],
        "validation",
        actor=owner,
        justification="x",
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    body = text(page(client, reviewer, reverse("governance:inbox")))
    assert reverse("governance:sign", args=[request.pk]) not in body


@pytest.mark.parametrize("count", [1, 50])
def test_inbox_query_count_does_not_grow_with_pending_requests(
    client, reviewer, project, owner, count, django_assert_max_num_queries
):
    pending_requests(project, owner, count)
    login(client, reviewer)
    with django_assert_max_num_queries(INBOX_QUERIES):
        response = client.get(reverse("governance:inbox"))
    assert len(response.context["rows"]) == count


# --- Model version page -----------------------------------------------------------------------


def test_version_page_shows_timeline_signatures_evidence_lineage_card_and_history(
    client, auditor, owner, reviewer, version
):
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="complete evidence"
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    response = page(client, auditor, reverse("governance:version", args=[version.pk]))
    body = text(response)
    assert response.status_code == 200
    # The timeline: the transition and its signature manifestation.
    assert "Development → Validation" in body and "Approved and applied" in body
    signature = Signature.objects.get()
    assert "Rory Tester" in body
    assert signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in body
    assert "approve moving credit/" in body
    assert signature.record_sha256 in body
    # The evidence checklist, gate by gate with reasons.
    assert "Model card is complete" in body and "the required model card fields are filled" in body
    # Lineage: commit, parameters, input dataset versions, the drawn graph.
    assert version.run.code_version.commit_sha in body
    assert "max_depth" in body
    assert "training v1" in body
    assert "<svg" in body and "Run" in body
    # Evaluations against criteria and baselines, fairness, model card, history.
    assert "Acceptance criteria of credit" in body and "Met" in body
    assert "Baseline: majority class" in body
    assert "No fairness audit." in body
    assert "limitations described" in body
    assert "stage Development → Validation" in body
    assert "transition request" in body


def test_version_page_draws_lineage_two_steps_up_and_down(client, owner, project, version):
    child = factories.model_version(version.registered_model, owner, derived_from=version)
    response = page(client, owner, reverse("governance:version", args=[version.pk]))
    drawing = response.context["drawing"]
    kinds = {(n.level, n.kind) for n in drawing.nodes}
    assert (0, "model_version") in kinds
    assert (-1, "run") in kinds
    assert (-2, "dataset_version") in kinds and (-2, "code_version") in kinds
    assert (1, "model_version") in kinds and (1, "evaluation") in kinds
    assert reverse("governance:version", args=[child.pk]) in text(response)


def test_version_page_queries_are_constant_in_history_rows(
    client, owner, version, django_assert_max_num_queries
):
    bounds = []
    login(client, owner)
    for edits in (1, 100):
        for n in range(edits):
            registry.update_model_version(
                version, actor=owner, description=f"edit {n}", reason=f"edit {n}"
            )
        with django_assert_max_num_queries(VERSION_PAGE_QUERIES) as captured:
            response = client.get(reverse("governance:version", args=[version.pk]))
        assert len(response.context["history"]) >= edits
        bounds.append(len(captured.captured_queries))
    assert bounds[0] == bounds[1]


def test_data_scientist_requests_a_transition_from_the_version_page(client, owner, version):
    url = reverse("governance:version", args=[version.pk])
    form = page(client, owner, url).context["request_form"]
    assert [value for value, _ in form.fields["to_stage"].choices] == ["validation", "rejected"]
    response = client.post(
        reverse("governance:request-transition", args=[version.pk]),
        {"to_stage": "validation", "justification": "ready"},
    )
    assert response.status_code == 302 and response["Location"] == url
    request = TransitionRequest.objects.get(model_version=version)
    assert (request.to_stage, request.requested_by) == ("validation", owner)
    body = text(client.get(url))
    assert "Transition to Validation requested" in body
    assert "is pending" in body


def test_request_form_refuses_a_stage_the_policy_does_not_allow(client, owner, version):
    response = login(client, owner).post(
        reverse("governance:request-transition", args=[version.pk]),
        {"to_stage": "production", "justification": "skip ahead"},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)
    assert not TransitionRequest.objects.exists()


def test_request_form_needs_a_justification(client, owner, version):
    response = login(client, owner).post(
        reverse("governance:request-transition", args=[version.pk]),
        {"to_stage": "validation", "justification": "   "},
    )
    assert response.status_code == 400
    assert "This field is required" in text(response) or "Explain why" in text(response)
    assert not TransitionRequest.objects.exists()


def test_reviewer_gets_no_request_form_and_cannot_post_one(client, reviewer, version):
    response = page(client, reviewer, reverse("governance:version", args=[version.pk]))
    assert response.context["request_form"] is None
    response = client.post(
        reverse("governance:request-transition", args=[version.pk]),
        {"to_stage": "validation", "justification": "x"},
    )
    assert response.status_code == 403
    assert not TransitionRequest.objects.exists()


def test_outsider_cannot_post_a_request_for_a_hidden_version(client, outsider, version):
    response = login(client, outsider).post(
        reverse("governance:request-transition", args=[version.pk]),
        {"to_stage": "validation", "justification": "x"},
    )
    assert response.status_code == 404


# --- Sign -------------------------------------------------------------------------------------


def test_sign_page_states_the_meaning_and_asks_for_the_password(client, reviewer, pending):
    body = text(page(client, reviewer, reverse("governance:sign", args=[pending.pk])))
    assert "approve moving credit/" in body and "from Development to Validation" in body
    assert 'type="password"' in body and 'name="csrfmiddlewaretoken"' in body
    assert ">Sign</button>" in body


def test_signing_with_the_correct_password_records_and_shows_the_signature(
    client, reviewer, pending
):
    url = reverse("governance:sign", args=[pending.pk])
    response = login(client, reviewer).post(
        url, {"meaning": "approved", "comment": "evidence checked", "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == url
    signature = Signature.objects.get(request=pending)
    assert (signature.signer, signature.meaning) == (reviewer, "approved")
    body = text(client.get(url))
    assert "Your signature" in body and "Rory Tester" in body
    assert signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in body
    assert signature.record_sha256 in body
    assert "evidence checked" in body
    pending.refresh_from_db()
    assert pending.status == "applied"
    assert AuditEvent.objects.filter(action="signature.recorded").count() == 1


def test_signing_with_a_wrong_password_shows_a_form_error_and_records_nothing(
    client, reviewer, pending
):
    response = login(client, reviewer).post(
        reverse("governance:sign", args=[pending.pk]),
        {"meaning": "approved", "password": "not my password"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password"] == [
        "the password is not correct; the signature was not recorded"
    ]
    assert "the password is not correct" in text(response)
    assert not Signature.objects.exists()


def test_rejecting_without_a_comment_is_a_form_error(client, reviewer, pending):
    response = login(client, reviewer).post(
        reverse("governance:sign", args=[pending.pk]),
        {"meaning": "rejected", "password": PASSWORD},
    )
    assert "Say why you reject" in text(response)
    assert not Signature.objects.exists()


def test_requester_sees_no_sign_button_and_the_server_refuses(client, owner, pending):
    url = reverse("governance:sign", args=[pending.pk])
    body = text(page(client, owner, url))
    assert ">Sign</button>" not in body
    assert "separation of duties" in body
    response = client.post(url, {"meaning": "approved", "password": PASSWORD})
    assert response.status_code == 403
    assert "separation of duties" in text(response)
    assert not Signature.objects.exists()


def test_data_scientist_without_signing_role_is_refused(client, member, project, pending):
    factories.grant(project, member, "review")
    url = reverse("governance:sign", args=[pending.pk])
    body = text(page(client, member, url))
    assert ">Sign</button>" not in body and "Your role may not sign" in body
    response = client.post(url, {"meaning": "approved", "password": PASSWORD})
    assert response.status_code == 403
    assert not Signature.objects.exists()


def test_decided_request_shows_no_sign_button(client, reviewer, compliance, pending):
    transitions.sign(pending, signer=compliance, meaning="approved", password=PASSWORD)
    body = text(page(client, reviewer, reverse("governance:sign", args=[pending.pk])))
    assert ">Sign</button>" not in body
    assert "can no longer be signed" in body


# --- Compliance -------------------------------------------------------------------------------


def test_compliance_page_offers_the_three_exports(client, compliance):
    body = text(page(client, compliance, reverse("governance:compliance")))
    assert "Exports are not available yet" not in body
    assert "dossier" in body.lower() and "audit" in body.lower() and "fairness" in body.lower()


def test_export_request_follows_progress_then_downloads_and_verifies(
    client, compliance, version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, compliance).post(
            reverse("governance:export-create"), {"kind": "dossier", "subject": str(version.pk)}
        )
    assert response.status_code == 302
    status_page = text(client.get(response["Location"]))
    assert "Status: <strong>done</strong>" in status_page and "Download the PDF" in status_page
    export_id = response["Location"].rstrip("/").split("/")[-1]
    download = client.get(f"/api/v1/exports/{export_id}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    verified = text(client.get(reverse("governance:export-verify", kwargs={"pk": export_id})))
    assert "matches" in verified.lower()


def test_reviewer_gets_403_on_the_compliance_pages(client, reviewer):
    response = page(client, reviewer, reverse("governance:compliance"))
    assert response.status_code == 403
    assert "Not allowed (403)" in text(response)
    assert client.get(reverse("governance:audit-trail")).status_code == 403


@pytest.fixture
def finished_dossier(version, compliance):
    """A finished dossier of `version`, requested by the compliance officer."""
    from governance.exports import services, subjects

    export = services.request_export(
        subjects.resolve("dossier", version.pk, compliance), actor=compliance
    )
    assert services.generate_export(export.pk) == "done"
    return export


def test_reviewer_with_the_export_right_reads_an_export_but_cannot_request_one(
    client, reviewer, project, version, finished_dossier
):
    factories.grant(project, reviewer, ProjectRight.EXPORT)
    status_page = page(client, reviewer, reverse("governance:export", args=[finished_dossier.pk]))
    assert status_page.status_code == 200
    body = text(status_page)
    assert "Status: <strong>done</strong>" in body and "Download the PDF" in body
    assert f'href="{reverse("governance:compliance")}"' not in body  # a page they may not open
    verified = client.get(reverse("governance:export-verify", args=[finished_dossier.pk]))
    assert verified.status_code == 200 and "matches" in text(verified).lower()
    download = client.get(f"/api/v1/exports/{finished_dossier.pk}/download/")
    assert download.status_code == 200
    refused = client.post(
        reverse("governance:export-create"), {"kind": "dossier", "subject": str(version.pk)}
    )
    assert refused.status_code == 403


def test_export_pages_answer_404_without_the_export_right(
    client, reviewer, member, finished_dossier
):
    for person in (reviewer, member):  # both may view the project, neither may read its exports
        login(client, person)
        for name in ("governance:export", "governance:export-verify"):
            assert client.get(reverse(name, args=[finished_dossier.pk])).status_code == 404
            assert client.get(reverse(name, args=[finished_dossier.pk + 1000])).status_code == 404


def test_verifying_the_chain_shows_it_intact(client, compliance, pending):
    response = login(client, compliance).post(reverse("governance:verify-chain"))
    body = text(response)
    assert "The audit chain is intact" in body
    assert f"{AuditEvent.objects.count()} events were recomputed" in body


def test_audit_trail_shows_only_events_of_projects_the_reader_may_export(
    client, auditor, pending, other_project, outsider
):
    hidden, _ = version_with_evidence(other_project, outsider)
    response = page(client, auditor, reverse("governance:audit-trail") + "?page=1")
    project_ids = {e.project_id for e in response.context["page"].object_list}
    assert other_project.pk not in project_ids
    assert pending.model_version.registered_model.project_id in project_ids or None in project_ids


def test_audit_trail_filters_by_action_and_actor(client, auditor, pending):
    url = reverse("governance:audit-trail")
    response = page(client, auditor, f"{url}?action=transition.requested&actor=olive")
    events = list(response.context["page"].object_list)
    assert [e.action for e in events] == ["transition.requested"]
    assert str(pending.pk) in text(response)


def test_audit_trail_refuses_an_inverted_date_range(client, auditor):
    url = reverse("governance:audit-trail")
    response = page(client, auditor, f"{url}?since=2026-02-01&until=2026-01-01")
    assert response.status_code == 400
    assert "The end date is before the start date" in text(response)


def test_audit_trail_paginates(client, auditor, project, owner):
    pending_requests(project, owner, 30)
    response = page(client, auditor, reverse("governance:audit-trail"))
    assert response.context["page"].paginator.num_pages > 1
    assert "page=2" in text(response)


def test_signing_a_request_decided_meanwhile_is_refused_with_409(
    client, reviewer, compliance, pending
):
    transitions.sign(pending, signer=compliance, meaning="approved", password=PASSWORD)
    response = login(client, reviewer).post(
        reverse("governance:sign", args=[pending.pk]),
        {"meaning": "approved", "password": PASSWORD},
    )
    assert response.status_code == 409
    assert "it can no longer be signed" in text(response)
    assert Signature.objects.filter(signer=reviewer).count() == 0


# --- Exports, once the exports API exists -----------------------------------------------------


class FakeApiResponse:
    def __init__(self, status_code, data):
        self.status_code, self.data = status_code, data


@pytest.fixture
def exports_api(monkeypatch):
    """Stands in for the exports API (built elsewhere) with its documented answers."""
    from governance import views

    answers = {}
    calls = []

    def call(request, path):
        calls.append((request.method, path, dict(request.POST.items())))
        return answers[path]

    monkeypatch.setattr(views, "exports_available", lambda: True)
    monkeypatch.setattr(views, "_call_exports_api", call)
    return answers, calls


def test_export_request_is_passed_to_the_exports_api_and_followed(
    client, compliance, version, exports_api
):
    answers, calls = exports_api
    answers["/api/v1/exports/"] = FakeApiResponse(202, {"id": 7, "status": "queued"})
    login(client, compliance)
    response = client.post(
        reverse("governance:export-create"), {"kind": "dossier", "subject": str(version.pk)}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("governance:export", args=[7])
    assert calls[0] == ("POST", "/api/v1/exports/", {"kind": "dossier", "subject": str(version.pk)})

    answers["/api/v1/exports/7/"] = FakeApiResponse(200, {"status": "running", "progress": 40})
    body = text(client.get(reverse("governance:export", args=[7])))
    assert 'http-equiv="refresh"' in body and "40%" in body
    assert "Download the PDF" not in body

    answers["/api/v1/exports/7/"] = FakeApiResponse(200, {"status": "done", "progress": 100})
    body = text(client.get(reverse("governance:export", args=[7])))
    assert 'http-equiv="refresh"' not in body
    assert 'href="/api/v1/exports/7/download/"' in body

    answers["/api/v1/exports/7/verify/"] = FakeApiResponse(200, {"valid": True, "sha256": "ab"})
    body = text(client.get(reverse("governance:export-verify", args=[7])))
    assert "valid" in body and "True" in body


def test_export_refused_by_the_api_shows_its_reason(client, compliance, exports_api):
    answers, _ = exports_api
    answers["/api/v1/exports/"] = FakeApiResponse(400, {"subject": ["no such model version"]})
    response = login(client, compliance).post(
        reverse("governance:export-create"), {"kind": "dossier", "subject": "999"}
    )
    assert response.status_code == 400
    assert "no such model version" in text(response)


def test_server_error_page_renders_without_the_database(rf):
    from config.error_pages import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Server error (500)" in response.content.decode()
