"""registry.access.ModelBackend: Django's model permissions, a user's own and their groups',
read in one query."""

import pytest
from django.contrib.auth import backends as django_backends
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.access import ModelBackend
from registry.roles import Role
from tests import factories

pytestmark = pytest.mark.django_db


def _fresh(user):
    """The user read again: no permission cache from an earlier check."""
    return type(user).objects.get(pk=user.pk)


def test_own_and_group_permissions_are_read_in_one_query_and_match_djangos():
    user = factories.user("mixed", role=Role.REVIEWER)  # the role: a group's permissions
    user.user_permissions.add(Permission.objects.get(codename="add_documentexport"))
    extra = Group.objects.create(name="extra")
    extra.permissions.add(Permission.objects.get(codename="view_auditevent"))
    user.groups.add(extra)

    expected = django_backends.ModelBackend().get_all_permissions(_fresh(user))
    user = _fresh(user)
    with CaptureQueriesContext(connection) as queries:
        got = ModelBackend().get_all_permissions(user)
        assert user.has_perm("governance.add_documentexport")  # from the cache
    assert len(queries) == 1
    assert got == expected
    assert {"governance.add_documentexport", "governance.view_auditevent"} <= got
    assert "governance.add_signature" in got  # the reviewer role's


def test_inactive_anonymous_and_object_checks_get_no_model_permissions():
    from django.contrib.auth.models import AnonymousUser

    user = factories.user("leaving", role=Role.REVIEWER)
    backend = ModelBackend()
    assert backend.get_all_permissions(_fresh(user), obj=user) == set()
    assert backend.get_all_permissions(AnonymousUser()) == set()
    user.is_active = False
    user.save()
    assert backend.get_all_permissions(_fresh(user)) == set()
    assert not _fresh(user).has_perm("governance.add_signature")


def test_a_superuser_has_every_permission():
    admin = factories.user("root", is_superuser=True)
    assert len(ModelBackend().get_all_permissions(_fresh(admin))) == Permission.objects.count()
