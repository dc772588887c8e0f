"""Authentication hardening: lockout after repeated failures on every login path, inactive
accounts refused everywhere, and sessions that end after a period of inactivity."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from registry import accounts
from registry.access_log import access_changed
from registry.choices import AccessAction
from registry.models import AccessChange
from tests import factories

pytestmark = pytest.mark.django_db

WRONG = "not the password"


def web_login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def admin_login(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def token_login(client, username, password):
    return client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
    )


@pytest.fixture
def staff(db):
    return factories.user("stella", is_staff=True)


@pytest.fixture
def lockouts():
    """The `access_changed` signals sent for lockouts during the test."""
    sent = []

    def listener(sender, **kwargs):
        if kwargs["action"] == AccessAction.LOCKED_OUT:
            sent.append(kwargs)

    access_changed.connect(listener)
    yield sent
    access_changed.disconnect(listener)


# --- lockout ------------------------------------------------------------------------------


def test_login_page_renders_a_form():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_web_login_with_the_right_password_logs_in(staff):
    client = Client()
    response = web_login(client, "stella", factories.PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_four_failures_do_not_lock_the_account(staff):
    client = Client()
    for _ in range(4):
        assert web_login(client, "stella", WRONG).status_code == 200
    assert token_login(client, "stella", factories.PASSWORD).status_code == 200


def test_a_successful_token_login_resets_the_failure_count(staff):
    client = Client()
    for _ in range(4):
        token_login(client, "stella", WRONG)
    assert token_login(client, "stella", factories.PASSWORD).status_code == 200
    for _ in range(4):
        assert token_login(client, "stella", WRONG).status_code == 400
    assert token_login(client, "stella", factories.PASSWORD).status_code == 200


def test_five_failures_across_web_admin_and_token_lock_the_account(staff, lockouts):
    client = Client()
    assert web_login(client, "stella", WRONG).status_code == 200
    assert web_login(client, "stella", WRONG).status_code == 200
    assert admin_login(client, "stella", WRONG).status_code == 200
    assert admin_login(client, "stella", WRONG).status_code == 200
    fifth = token_login(client, "stella", WRONG)

    assert fifth.status_code == 403
    assert "locked" in fifth.json()["detail"]
    # Locked: even the right password is refused, on every path, with a clear message.
    token = token_login(client, "stella", factories.PASSWORD)
    assert token.status_code == 403
    assert token.json() == {"detail": accounts.LOCKED_OUT_MESSAGE}
    assert not Token.objects.filter(user=staff).exists()
    web = web_login(client, "stella", factories.PASSWORD)
    assert web.status_code == 403
    assert accounts.LOCKED_OUT_MESSAGE in web.content.decode()
    admin = admin_login(client, "stella", factories.PASSWORD)
    assert admin.status_code == 403
    assert accounts.LOCKED_OUT_MESSAGE in admin.content.decode()
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_lockout_is_recorded_once_and_announced(staff, lockouts):
    client = Client()
    for _ in range(5):
        token_login(client, "stella", WRONG)
    token_login(client, "stella", factories.PASSWORD)

    # The attempt made while locked counts too: it extends the lockout.
    assert AccessAttempt.objects.get(username="stella").failures_since_start == 6
    assert AccessFailureLog.objects.filter(username="stella").count() >= 5
    assert AccessFailureLog.objects.filter(username="stella", locked_out=True).exists()
    change = AccessChange.objects.get(action=AccessAction.LOCKED_OUT)
    assert change.target_user == staff
    assert change.actor is None
    assert change.actor_name == "system"
    assert [signal["target_user"] for signal in lockouts] == [staff]
    assert lockouts[0]["change"] == change


def test_lockout_ends_after_the_cool_off(staff):
    client = Client()
    for _ in range(5):
        token_login(client, "stella", WRONG)
    assert token_login(client, "stella", factories.PASSWORD).status_code == 403

    cool_off = timedelta(minutes=settings.AXES_COOLOFF_TIME * 60 + 1)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off)

    assert token_login(client, "stella", factories.PASSWORD).status_code == 200
    assert AccessChange.objects.filter(action=AccessAction.UNLOCKED, target_user=staff).exists()


def test_failures_of_one_account_do_not_lock_another(staff):
    factories.user("other")
    client = Client()
    for _ in range(5):
        token_login(client, "other", WRONG)
    assert token_login(client, "stella", factories.PASSWORD).status_code == 200


def test_failures_for_an_unknown_username_lock_that_name_only(staff):
    client = Client()
    for _ in range(5):
        token_login(client, "nobody", WRONG)
    assert token_login(client, "nobody", WRONG).status_code == 403
    assert AccessChange.objects.get(action=AccessAction.LOCKED_OUT).target_user is None
    assert token_login(client, "stella", factories.PASSWORD).status_code == 200


# --- inactive accounts ----------------------------------------------------------------


def test_deactivated_user_cannot_get_a_token(staff):
    accounts.deactivate_user(staff, actor=None)
    response = token_login(Client(), "stella", factories.PASSWORD)
    assert response.status_code == 400
    assert "token" not in response.json()


def test_deactivated_user_cannot_log_in_on_the_web_or_admin(staff):
    accounts.deactivate_user(staff, actor=None)
    client = Client()
    assert web_login(client, "stella", factories.PASSWORD).status_code == 200  # the form again
    assert admin_login(client, "stella", factories.PASSWORD).status_code == 200
    assert client.get("/admin/").status_code == 302


def test_deactivated_users_token_stops_working(api, staff):
    token = Token.objects.create(user=staff)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/projects/").status_code == 200
    accounts.deactivate_user(staff, actor=None)
    assert api.get("/api/v1/projects/").status_code == 401
    assert not Token.objects.filter(user=staff).exists()


def test_deactivated_users_open_session_stops_working(staff):
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    accounts.deactivate_user(staff, actor=None)
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/v1/projects/").status_code == 401


def test_reactivated_user_can_log_in_again(staff):
    accounts.deactivate_user(staff, actor=None)
    accounts.reactivate_user(staff, actor=None)
    assert token_login(Client(), "stella", factories.PASSWORD).status_code == 200


# --- session expiry after inactivity ---------------------------------------------------


def test_session_idle_timeout_defaults_to_thirty_minutes_refreshed_on_each_request():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_session_idle_timeout_is_read_from_the_environment():
    env = {**os.environ, "SESSION_IDLE_TIMEOUT_MINUTES": "7", "DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.SESSION_COOKIE_AGE)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    assert out.stdout.strip() == str(7 * 60)


def test_each_request_pushes_the_session_expiry_forward(staff):
    client = Client()
    client.force_login(staff)
    session = Session.objects.get()
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get("/admin/").status_code == 200
    session.refresh_from_db()
    remaining = session.expire_date - timezone.now()
    assert remaining > timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_session_idle_longer_than_the_timeout_is_refused(staff):
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    # The last request was longer ago than the idle timeout: the session has expired.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/api/v1/projects/").status_code == 401
