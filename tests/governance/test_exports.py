"""PDF exports: the documents say what the registry holds, and only the right people get them.

Each rendered PDF is read back with pypdf: its text, its PDF/A identification and the JSON
record attached to it.
"""

import hashlib
import io
import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from pypdf import PdfReader

from governance import transitions
from governance.audit_chain import canonical_json
from governance.choices import AuditAction, ExportStatus
from governance.exports import documents, services, subjects
from governance.exports.pdf_filters import as_json, utc
from governance.exports.tasks import render_export
from governance.models import AuditEvent, DocumentExport, ExportImmutable
from lineage.choices import NodeKind
from lineage.models import Edge, Node
from registry import services as registry
from registry.choices import ProjectRight
from tests import factories
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def signed_version(project, owner, reviewer):
    """A version moved to validation by a reviewer's signed approval, with a risk on file."""
    registry.add_risk(
        project,
        actor=owner,
        description="Income data lacks young applicants",
        likelihood="medium",
        impact="medium",
        mitigation="Reweighting",
    )
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="evidence complete"
    )
    transitions.sign(
        request, signer=reviewer, meaning="approved", password=PASSWORD, comment="checked"
    )
    return version


def export_via_api(client, kind, subject, capture):
    with capture(execute=True):
        response = client.post("/api/v1/exports/", {"kind": kind, "subject": subject})
    assert response.status_code == 202, response.content
    return response


def pdf_of(client, export_id) -> bytes:
    response = client.get(f"/api/v1/exports/{export_id}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    return b"".join(response.streaming_content)


# The fonts of governance.exports.fonts, as PDF base font names (after the subset tag).
OUR_FONTS = {"Stagegate-Sans", "Stagegate-Sans-Bold", "Stagegate-Mono", "Stagegate-Mono-Bold"}


def embedded_fonts(reader: PdfReader) -> set[str]:
    """The base names of the fonts the pages use (subset prefixes such as ABCDEF+ dropped)."""
    names = set()
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for font in (resources.get("/Font") or {}).values():
            names.add(str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1])
    return names


def event_line(event: dict) -> str:
    """The start of an audit event's line in a document's text."""
    return f"#{event['sequence']} {utc(event['occurred_at'])} {event['actor']} {event['action']}"


def text_of(reader: PdfReader) -> str:
    # pypdf breaks lines where the layout does; collapse whitespace to compare phrases.
    return re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in reader.pages))


@pytest.fixture
def finished_export(project, compliance, api, django_capture_on_commit_callbacks):
    """A finished audit-trail report of `project`, requested by the compliance officer."""
    response = export_via_api(
        api.as_user(compliance),
        "audit_trail",
        {"project": "credit"},
        django_capture_on_commit_callbacks,
    )
    return DocumentExport.objects.get(pk=response.json()["id"])


# --- The model dossier ------------------------------------------------------------------------


def test_dossier_shows_signatures_sections_chain_head_and_attaches_its_record(
    api, compliance, signed_version, django_capture_on_commit_callbacks
):
    client = api.as_user(compliance)
    response = export_via_api(
        client, "dossier", signed_version.pk, django_capture_on_commit_callbacks
    )
    export = DocumentExport.objects.get(pk=response.json()["id"])
    assert export.status == ExportStatus.DONE and export.progress == 100
    status = client.get(f"/api/v1/exports/{export.pk}/").json()
    assert status["status"] == "done" and status["sha256"] == export.sha256

    data = pdf_of(client, export.pk)
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert len(data) == export.size
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == export.pages
    text = text_of(reader)

    signature = signed_version.transition_requests.get().signatures.get()
    assert "Rory Tester" in text
    assert "Approved" in text
    assert signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert signature.record_sha256 in text
    for _, heading in documents.DOSSIER_SECTIONS:
        assert heading in text, heading
    assert documents.NO_FAIRNESS_AUDIT in text
    assert "Income data lacks young applicants" in text
    assert export.document_id in text
    assert f"Generated at {export.completed_at:%Y-%m-%d}" in text and "by Casey Tester" in text

    attached = reader.attachments["record.json"][0]
    record = json.loads(attached)
    assert hashlib.sha256(attached).hexdigest() == export.record_sha256
    assert export.record_sha256 in text
    assert attached == canonical_json(record).encode()
    assert record["model_version"]["id"] == signed_version.pk
    assert record["signatures"][0]["record_sha256"] == signature.record_sha256
    head = record["document"]["audit_chain_head"]
    assert (export.chain_head_sequence, export.chain_head_hash) == (head["sequence"], head["hash"])
    assert head["hash"] in text and f"#{head['sequence']}" in text
    assert record["audit_extract"]["verification"]["valid"] is True
    assert "Audit chain valid" in text
    events = record["audit_extract"]["events"]
    assert events and all(event_line(e) in text for e in events)
    assert embedded_fonts(reader) <= OUR_FONTS

    xmp = reader.xmp_metadata
    assert (xmp.pdfaid_part, xmp.pdfaid_conformance) == ("3", "B")
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_CREATED)
    assert json.loads(event.payload)["after"]["sha256"] == export.sha256
    assert event.actor_id == compliance.pk


def test_dossier_fairness_section_renders_audit_groups_and_rules_generically(
    project, owner, compliance
):
    version, _ = version_with_evidence(project, owner)
    export = DocumentExport(pk=99, kind="dossier", requested_by_name="Casey Tester")
    meta = documents.DocumentMeta(export.document_id, "dossier", version.created_at, "Casey")
    record = documents.dossier_record(version, meta, head=documents.chain_head())
    record["fairness"]["audits"] = [
        {
            "id": 7,
            "dataset_version": 1,
            "dataset_version_label": "credit/holdout v1",
            "status": "completed",
            "passed": False,
            "result": {
                "groups": {"sex=F": {"selection_rate": 0.31}, "sex=M": {"selection_rate": 0.52}},
                "rules": [{"rule": "demographic_parity_ratio", "limit": 0.8, "passed": False}],
            },
        }
    ]
    html = services.render_record("pdf/dossier.html", record, documents.dossier_context(record))
    assert documents.NO_FAIRNESS_AUDIT not in html
    assert "sex=F" in html and "0.5200" in html
    assert "demographic_parity_ratio" in html and "not passed" in html
    assert html.count("<svg") == 2  # the lineage diagram and one chart of selection rates


# --- The audit-trail report -------------------------------------------------------------------


def test_audit_trail_report_lists_every_project_event_and_the_verification(
    api, compliance, project, finished_export
):
    reader = PdfReader(io.BytesIO(pdf_of(api.as_user(compliance), finished_export.pk)))
    text = text_of(reader)
    record = json.loads(reader.attachments["record.json"][0])
    project_events = AuditEvent.objects.filter(
        project_id=project.pk, sequence__lte=finished_export.chain_head_sequence
    )
    assert [e["sequence"] for e in record["events"]] == list(
        project_events.values_list("sequence", flat=True)
    )
    first_page = reader.pages[0].extract_text()
    assert "Audit chain valid" in re.sub(r"\s+", " ", first_page)
    for _, heading in documents.AUDIT_TRAIL_SECTIONS:
        assert heading in text
    assert "record.created registry.project #" in text
    assert all(event_line(e) in text for e in record["events"])
    created = next(e for e in record["events"] if e["action"] == "record.created")
    assert f"after: {as_json(created['after'])}"[:60] in text


def test_verify_reports_match_then_tampering_and_the_command_agrees(
    api, compliance, finished_export, capsys
):
    client = api.as_user(compliance)
    assert client.get(f"/api/v1/exports/{finished_export.pk}/verify/").json()["matches"] is True
    call_command("verify_export", finished_export.pk)
    assert "MATCHES" in capsys.readouterr().out

    path = default_storage.path(finished_export.file.name)
    with open(path, "r+b") as stored:
        stored.seek(200)
        stored.write(b"X")
    body = client.get(f"/api/v1/exports/{finished_export.pk}/verify/").json()
    assert body["matches"] is False and body["sha256_actual"] != body["sha256_recorded"]
    with pytest.raises(SystemExit) as exit_code:
        call_command("verify_export", finished_export.pk)
    assert exit_code.value.code == 1
    assert "DOES NOT MATCH" in capsys.readouterr().out


def test_running_the_task_again_creates_no_second_file(finished_export, media):
    files_before = sorted(p.name for p in media.rglob("*.pdf"))
    events_before = AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED).count()
    assert render_export(finished_export.pk) == ExportStatus.DONE
    assert (
        sorted(p.name for p in media.rglob("*.pdf"))
        == files_before
        == [finished_export.file.name.rsplit("/", 1)[1]]
    )
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED).count() == events_before
    assert finished_export.document_id in files_before[0]
    assert finished_export.sha256 in files_before[0]


def test_a_finished_export_never_changes(finished_export):
    finished_export.pages = 1
    with pytest.raises(ExportImmutable):
        finished_export.save()
    with pytest.raises(ExportImmutable):
        finished_export.delete()


def test_storage_refuses_to_overwrite_an_existing_file(project, compliance):
    subject = subjects.resolve("audit_trail", "credit", compliance)
    export = services.request_export(subject, actor=compliance)
    record, html = services.build(export)
    rendered = services.pdf.RenderedPdf(data=b"%PDF-1.7 placeholder", pages=1)
    name = services.storage_name(export, hashlib.sha256(rendered.data).hexdigest())
    default_storage.save(name, io.BytesIO(b"an earlier file"))
    with pytest.raises(services.Conflict, match="never overwritten"):
        services._store(export.pk, record, rendered)
    assert default_storage.open(name).read() == b"an earlier file"
    export.refresh_from_db()
    assert export.status != ExportStatus.DONE and not export.sha256


def test_missing_fonts_fail_the_export_with_a_reason_and_no_file(
    project, compliance, settings, tmp_path, media
):
    settings.STAGEGATE_PDF_FONT_DIR = str(tmp_path / "no-fonts")
    export = services.request_export(
        subjects.resolve("audit_trail", "credit", compliance), actor=compliance
    )
    assert services.generate_export(export.pk) == ExportStatus.FAILED
    export.refresh_from_db()
    assert "fonts-dejavu-core" in export.error
    assert not list(media.rglob("*.pdf")) and not export.file


# --- Who may export and download --------------------------------------------------------------


def test_auditor_may_read_but_not_create_exports(api, auditor, signed_version, finished_export):
    client = api.as_user(auditor)
    response = client.post("/api/v1/exports/", {"kind": "dossier", "subject": signed_version.pk})
    assert response.status_code == 403
    assert client.get(f"/api/v1/exports/{finished_export.pk}/download/").status_code == 200


def test_reviewer_without_export_right_gets_403_to_create_and_404_to_download(
    api, reviewer, signed_version, finished_export
):
    client = api.as_user(reviewer)
    response = client.post("/api/v1/exports/", {"kind": "dossier", "subject": signed_version.pk})
    assert response.status_code == 403
    assert client.get(f"/api/v1/exports/{finished_export.pk}/download/").status_code == 404
    assert client.get(f"/api/v1/exports/{finished_export.pk}/").status_code == 404


def test_compliance_officer_without_export_right_on_project_gets_403(api, project, owner):
    officer = factories.user("cleo", role=factories.Role.COMPLIANCE_OFFICER)
    factories.grant(project, officer, ProjectRight.VIEW)
    response = api.as_user(officer).post(
        "/api/v1/exports/", {"kind": "audit_trail", "subject": {"project": "credit"}}
    )
    assert response.status_code == 403
    assert "'export' right" in response.json()["detail"]


def test_outsider_gets_404_to_create_and_download(api, outsider, signed_version, finished_export):
    client = api.as_user(outsider)
    response = client.post("/api/v1/exports/", {"kind": "dossier", "subject": signed_version.pk})
    assert response.status_code == 404
    assert client.get(f"/api/v1/exports/{finished_export.pk}/download/").status_code == 404
    assert client.get(f"/api/v1/exports/{finished_export.pk}/verify/").status_code == 404


def test_export_list_shows_only_projects_with_the_export_right(
    api, project, compliance, outsider, other_project, django_assert_max_num_queries
):
    outsider.groups.add(Group.objects.get(name=factories.Role.COMPLIANCE_OFFICER))
    for _ in range(3):
        services.request_export(
            subjects.resolve("audit_trail", "credit", compliance), actor=compliance
        )
    services.request_export(subjects.resolve("audit_trail", "secret", outsider), actor=outsider)
    client = api.as_user(compliance)
    # Session, token, lockout and permission look-ups, then one count and one page query.
    with django_assert_max_num_queries(11):
        body = client.get("/api/v1/exports/").json()
    assert body["count"] == 3
    assert {e["project"] for e in body["results"]} == {"credit"}
    assert all(e["status"] == "queued" and e["download_url"] is None for e in body["results"])


# --- Lineage ----------------------------------------------------------------------------------


def test_a_finished_dossier_is_in_the_lineage_downstream_of_its_model_version(
    api, compliance, member, outsider, signed_version, django_capture_on_commit_callbacks
):
    response = export_via_api(
        api.as_user(compliance), "dossier", signed_version.pk, django_capture_on_commit_callbacks
    )
    export_ref = f"export:{response.json()['id']}"
    model_ref = Node.objects.get(kind=NodeKind.MODEL_VERSION, object_id=signed_version.pk).ref
    body = (
        api.as_user(member)
        .get("/api/v1/lineage", {"nodeId": model_ref, "direction": "downstream"})
        .json()
    )
    nodes = {node["id"]: node for node in body["graph"]}
    assert nodes[export_ref]["type"] == "EXPORT"
    assert nodes[export_ref]["data"]["label"] == f"SG-EXP-{response.json()['id']:06d} Model dossier"
    assert nodes[export_ref]["inEdges"] == [{"origin": model_ref, "destination": export_ref}]
    upstream = api.as_user(member).get("/api/v1/lineage", {"nodeId": export_ref}).json()
    assert model_ref in {node["id"] for node in upstream["graph"]}

    client = api.as_user(outsider)
    assert client.get("/api/v1/lineage", {"nodeId": export_ref}).status_code == 404
    assert client.get("/api/v1/lineage", {"nodeId": model_ref}).status_code == 404


def test_an_audit_trail_report_is_a_lineage_node_derived_from_no_record(finished_export):
    node = Node.objects.get(kind=NodeKind.EXPORT, object_id=finished_export.pk)
    assert node.project_id == finished_export.project_id
    assert not node.in_edges.exists()


def test_an_export_that_fails_to_finish_leaves_no_lineage_node(
    signed_version, compliance, monkeypatch
):
    export = services.request_export(
        subjects.resolve("dossier", signed_version.pk, compliance), actor=compliance
    )

    def refuse(*args, **kwargs):
        raise RuntimeError("the audit trail is unavailable")

    # The audit event is written after the node and its edge, in the same transaction.
    monkeypatch.setattr(services, "audit_chain", SimpleNamespace(record=refuse))
    assert services.generate_export(export.pk) == ExportStatus.FAILED
    export.refresh_from_db()
    assert export.error == "RuntimeError: the audit trail is unavailable"
    assert not Node.objects.filter(kind=NodeKind.EXPORT).exists()
    assert not Edge.objects.filter(dst__kind=NodeKind.EXPORT).exists()


# --- Bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "brochure", "subject": 1}, "kind"),
        ({"kind": "dossier", "subject": {"model_version": "x"}}, "model version id"),
        ({"kind": "audit_trail", "subject": {"since": "2026-01-01T00:00:00Z"}}, "project"),
        (
            {"kind": "audit_trail", "subject": {"project": "credit", "since": "2026-01-01"}},
            "time zone",
        ),
        (
            {
                "kind": "audit_trail",
                "subject": {
                    "project": "credit",
                    "since": "2026-02-01T00:00:00Z",
                    "until": "2026-01-01T00:00:00Z",
                },
            },
            "before until",
        ),
    ],
)
def test_bad_export_requests_get_400_with_the_reason(api, compliance, project, payload, message):
    response = api.as_user(compliance).post("/api/v1/exports/", payload)
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert not DocumentExport.objects.exists()


@pytest.fixture
def fairness_audit(api, project, owner, django_capture_on_commit_callbacks):
    """A completed fairness audit of a version with evidence, in which group f is never
    predicted positive."""
    from governance.models import FairnessAudit
    from tests.governance.test_fairness_audits import audit_csv

    version, _ = version_with_evidence(project, owner)
    with django_capture_on_commit_callbacks(execute=True):
        api.as_user(owner).post(
            "/api/v1/fairness-audits/",
            {
                "model_version": version.pk,
                "sensitive_features": "sex",
                "file": SimpleUploadedFile("p.csv", audit_csv(fair=False)),
            },
            format="multipart",
        )
    return FairnessAudit.objects.get()


def test_fairness_report_shows_groups_verdicts_and_attaches_the_audit(
    api, compliance, fairness_audit, django_capture_on_commit_callbacks
):
    audit, version = fairness_audit, fairness_audit.model_version
    client = api.as_user(compliance)
    response = export_via_api(client, "fairness", audit.pk, django_capture_on_commit_callbacks)
    reader = PdfReader(io.BytesIO(pdf_of(client, response.json()["id"])))
    text = text_of(reader)
    assert "Results by sex" in text
    assert "Selection rate for f (reference) is 0.00 against 0.60 for m" in text
    # The chart is set in the document's fonts, not in whatever the machine has for Helvetica.
    assert embedded_fonts(reader) <= OUR_FONTS
    attached = json.loads(reader.attachments["record.json"][0])
    assert attached["audit"]["id"] == audit.pk and attached["audit"]["passed"] is False
    report = Node.objects.get(kind=NodeKind.EXPORT, object_id=response.json()["id"])
    assert [(e.src.kind, e.src.object_id) for e in report.in_edges.select_related("src")] == [
        (NodeKind.FAIRNESS_AUDIT, audit.pk)
    ]
    dossier = export_via_api(client, "dossier", version.pk, django_capture_on_commit_callbacks)
    dossier_text = text_of(PdfReader(io.BytesIO(pdf_of(client, dossier.json()["id"]))))
    assert documents.NO_FAIRNESS_AUDIT not in dossier_text
    assert "Results by sex" in dossier_text


# --- Every document -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dossier", "audit_trail", "fairness"])
def test_every_document_prints_the_audit_chain_head_it_was_made_at(
    kind, request, api, project, compliance, django_capture_on_commit_callbacks
):
    """The head printed anchors the chain outside the database: a later rewrite of the audit
    table no longer holds the hash a document handed out states."""
    subject = {
        "dossier": lambda: request.getfixturevalue("signed_version").pk,
        "audit_trail": lambda: {"project": "credit"},
        "fairness": lambda: request.getfixturevalue("fairness_audit").pk,
    }[kind]()
    client = api.as_user(compliance)
    response = export_via_api(client, kind, subject, django_capture_on_commit_callbacks)
    export = DocumentExport.objects.get(pk=response.json()["id"])
    # The head when the document was rendered: the event just before the export's own.
    exported = AuditEvent.objects.get(action=AuditAction.EXPORT_CREATED, object_id=str(export.pk))
    head = AuditEvent.objects.get(sequence=exported.sequence - 1)
    assert (export.chain_head_sequence, export.chain_head_hash) == (head.sequence, head.hash)
    reader = PdfReader(io.BytesIO(pdf_of(client, export.pk)))
    first_page = re.sub(r"\s+", " ", reader.pages[0].extract_text())
    assert f"Audit chain head #{head.sequence} {head.hash}" in first_page
    attached = json.loads(reader.attachments["record.json"][0])
    assert attached["document"]["audit_chain_head"] == {
        "sequence": head.sequence,
        "hash": head.hash,
    }


def test_a_document_may_load_nothing_but_the_installed_fonts():
    from datetime import UTC, datetime

    from governance.exports import pdf

    html = pdf.render_html("pdf/base.html", {"record": {"document": {"title": "t"}}})
    html = html.replace("</body>", '<img src="file:///etc/hostname"></body>')
    with pytest.raises(pdf.ForbiddenResource, match="may not load file:///etc/hostname"):
        pdf.write_pdf(html, {}, generated_at=datetime.now(UTC), title="t")
    rendered = pdf.write_pdf(
        pdf.render_html("pdf/base.html", {"record": {"document": {"title": "t"}}}),
        {"a": 1},
        generated_at=datetime.now(UTC),
        title="t",
    )
    reader = PdfReader(io.BytesIO(rendered.data))
    fonts = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"].get("/Font", {}).values()
    }
    # Only the @font-face families of governance/exports/fonts.py, never a system font.
    assert fonts and all("Stagegate" in name for name in fonts)
    assert len(reader.trailer["/Root"]["/AF"]) == 1


def test_audit_events_are_set_in_blocks_of_wrapped_lines_with_every_field():
    from governance.exports import pdf_filters

    short = {
        "sequence": 7,
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "actor": "Ann <Admin>",
        "action": "record.updated",
        "object_type": "registry.modelversion",
        "object_id": "3",
        "before": {"stage": "development"},
        "after": {"stage": "validation"},
        "reason": "line one\nline two",
    }
    long = {**short, "sequence": 8, "after": {"notes": "x " * 120}, "reason": ""}
    text = pdf_filters.event_text(short)
    assert text.splitlines() == [
        "#7  2026-01-02 03:04:05 UTC  Ann <Admin>  record.updated  registry.modelversion #3  "
        "(line one line two)",
        'before: {"stage": "development"}   after: {"stage": "validation"}',
    ]
    lines = pdf_filters.event_text(long).splitlines()
    assert all(len(line) <= pdf_filters.EVENT_COLUMNS for line in lines)
    assert lines[2].startswith("after: ") and lines[3].startswith("       ")
    blocks = pdf_filters.event_blocks([short] * (pdf_filters.EVENTS_PER_BLOCK + 1))
    assert len(blocks) == 2 and blocks[1].count("#7  ") == 1
    assert "Ann &lt;Admin&gt;" in blocks[0] and "<Admin>" not in blocks[0]
