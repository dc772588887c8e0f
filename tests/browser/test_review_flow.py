"""The review flow in a real browser: Debian's Chromium driven by Playwright, live server.

A data scientist requests production, a reviewer finds the request in the inbox, opens the
evidence and approves with the password, a compliance officer signs (and exports the dossier
once exports exist), and an outsider gets 404 on the version's URL. Screenshots of the main
pages go to test-output/screenshots/ for reviewers of the code.
"""

import os
from pathlib import Path

import pytest

from governance.choices import RequestStatus
from governance.models import TransitionRequest
from registry import services as registry
from registry.models import ModelVersion
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence
from tests.pages.builders import high_risk_policy_without_fairness, mitigate_open_risks, promote

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium chromium-driver, or `make system-deps` with BROWSER=1)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread, which Django's async-safety
    # check mistakes for async code touching the database; these tests are synchronous.
    # Set for this module's tests only, and put back after them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def as_user(browser, live_server):
    """`as_user(user)` opens a fresh browser session signed in through the login form."""
    contexts = []

    def sign_in(user):
        context = browser.new_context(base_url=live_server.url, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield sign_in
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def staged_version(project, owner, reviewer, compliance):
    """A version with complete evidence, moved to staging through real requests and
    signatures, in a project bound to the high-risk policy minus the fairness gate."""
    high_risk_policy_without_fairness(project, author=owner, approver=compliance)
    registry.add_risk(
        project,
        actor=owner,
        description="Applicants' income may be misreported",
        likelihood="medium",
        impact="high",
    )
    mitigate_open_risks(project, owner)
    version, _ = version_with_evidence(project, owner)
    promote(version, ["validation"], requester=owner, signers=[reviewer])
    promote(version, ["approved"], requester=owner, signers=[reviewer, compliance])
    promote(version, ["staging"], requester=owner, signers=[reviewer])
    return version


def sign_in_browser(page, *, comment: str) -> None:
    page.check("input[name=meaning][value=approved]")
    page.fill("#id_comment", comment)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()


def test_request_review_approve_and_export_in_a_browser(
    as_user, live_server, staged_version, owner, reviewer, compliance, outsider
):
    version_url = f"/versions/{staged_version.pk}/"

    # A data scientist requests production from the version page.
    page = as_user(owner)
    shot(page, "01-dashboard")
    page.goto(version_url)
    page.select_option("#id_to_stage", "production")
    page.fill("#id_justification", "Shadow run matched offline metrics for two weeks.")
    page.get_by_role("button", name="Request transition").click()
    page.get_by_text("Transition to Production requested").wait_for()
    shot(page, "02-version-page-after-request")
    request = TransitionRequest.objects.get(model_version=staged_version, status="pending")
    assert request.to_stage == "production"

    # A reviewer finds it in the inbox, opens the evidence, and approves with the password.
    page = as_user(reviewer)
    page.get_by_role("link", name="Review inbox").click()
    shot(page, "03-review-inbox")
    page.get_by_role("link", name=f"Review #{request.pk}").click()
    assert page.get_by_text("Shadow run matched offline metrics").is_visible()
    page.get_by_role("link", name=f"{staged_version.registered_model.name} v1").first.click()
    page.locator("#evidence").get_by_text("Evaluation meets the acceptance criteria").wait_for()
    assert page.locator("#lineage svg").is_visible()
    shot(page, "04-version-evidence")
    page.go_back()
    shot(page, "05-sign-page")
    sign_in_browser(page, comment="Evidence and lineage checked.")
    page.get_by_text("Your signature was recorded.").wait_for()
    manifestation = page.locator("#my-signature")
    assert "Rory Tester" in manifestation.inner_text()
    assert "UTC" in manifestation.inner_text()
    assert "APPROVED" in manifestation.inner_text().upper()
    shot(page, "06-signature-manifestation")

    # The compliance officer's approval completes the gates and applies the transition.
    page = as_user(compliance)
    page.goto(f"/requests/{request.pk}/sign/")
    sign_in_browser(page, comment="Compliance review complete.")
    page.get_by_text("Your signature was recorded.").wait_for()
    assert page.get_by_text("Approved and applied").first.is_visible()
    shot(page, "07-applied")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPLIED
    assert ModelVersion.objects.get(pk=staged_version.pk).stage == "production"

    page.get_by_role("link", name="Compliance").click()
    from governance.views import exports_available

    if exports_available():
        page.goto(version_url)
        page.get_by_role("button", name="Export the dossier (PDF)").click()
        link = page.get_by_role("link", name="Download the PDF")
        link.wait_for(timeout=60_000)
        with page.expect_download() as download:
            link.click()
        assert download.value.path().read_bytes()[:5] == b"%PDF-"
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance").click()
    else:
        assert page.get_by_text("Exports are not available yet").first.is_visible()
    page.get_by_role("button", name="Verify the whole chain now").click()
    page.get_by_text("The audit chain is intact.").wait_for()
    shot(page, "08-compliance")
    page.get_by_role("link", name="Browse and filter the audit trail").click()
    page.select_option("#id_action", "transition.applied")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("tbody tr").count() >= 1
    shot(page, "09-audit-trail")

    # Someone with no right on the project does not learn that the version exists.
    page = as_user(outsider)
    response = page.goto(version_url)
    assert response.status == 404
    assert page.get_by_text("Not found (404)").is_visible()
    shot(page, "10-outsider-404")
