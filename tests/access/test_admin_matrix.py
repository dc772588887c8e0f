"""The admin site's permission matrix: every changelist registered in the admin × every role
(as staff) and anonymous, with the exact status expected, and no sign of the unassigned
project on any page.

Changelists are discovered from the admin site: a newly registered model fails
`test_every_admin_changelist_is_in_the_matrix` until it has its row here.
"""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.access.world import RIGHTS_ON_ASSIGNED, UNASSIGNED

ROLES = list(RIGHTS_ON_ASSIGNED)
OK, NO = 200, 403

# Status of each changelist per role: (data scientist, reviewer, compliance officer, auditor,
# admin, superuser). Every role reads the registry's records; the administrator reads
# projects (to grant rights on them) but none of their contents, and alone manages accounts.
# fmt: off
EXPECTED = {
    "registry.project":                     (OK, OK, OK, OK, OK, OK),
    "registry.riskitem":                    (OK, OK, OK, OK, NO, OK),
    "registry.registeredmodel":             (OK, OK, OK, OK, NO, OK),
    "registry.modelversion":                (OK, OK, OK, OK, NO, OK),
    "registry.dataset":                     (OK, OK, OK, OK, NO, OK),
    "registry.datasetversion":              (OK, OK, OK, OK, NO, OK),
    "registry.evaluation":                  (OK, OK, OK, OK, NO, OK),
    "lineage.codeversion":                  (OK, OK, OK, OK, NO, OK),
    "lineage.run":                          (OK, OK, OK, OK, NO, OK),
    "lineage.receivedevent":                (OK, OK, OK, OK, NO, OK),
    "registry.projectuserobjectpermission":  (NO, NO, NO, NO, OK, OK),
    "registry.projectgroupobjectpermission": (NO, NO, NO, NO, OK, OK),
    "registry.accesschange":                (NO, NO, NO, OK, OK, OK),
    "auth.user":                            (NO, NO, NO, NO, OK, OK),
    "auth.group":                           (NO, NO, NO, NO, OK, OK),
    "axes.accessattempt":                   (NO, NO, NO, NO, OK, OK),
    "axes.accessfailurelog":                (NO, NO, NO, NO, OK, OK),
    "axes.accesslog":                       (NO, NO, NO, NO, NO, OK),
    "authtoken.tokenproxy":                 (NO, NO, NO, NO, NO, OK),
}
# fmt: on

# How many rows of the scoped changelists each role sees: the assigned project's only
# (superusers: both projects; the administrator has no right on the assigned project).
SCOPED = [
    "registry.project",
    "registry.riskitem",
    "registry.registeredmodel",
    "registry.modelversion",
    "registry.dataset",
    "registry.datasetversion",
    "registry.evaluation",
    "lineage.codeversion",
    "lineage.run",
    "lineage.receivedevent",
]
ROWS = dict.fromkeys(ROLES, 1) | {"admin": 0, "superuser": 2}


def _changelist(name):
    app_label, model_name = name.split(".")
    return reverse(f"admin:{app_label}_{model_name}_changelist")


def test_every_admin_changelist_is_in_the_matrix():
    registered = {f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry}
    assert registered == set(EXPECTED), "add the new admin page's row to EXPECTED"


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_changelist_status_and_no_sign_of_the_unassigned_project(world, name, role):
    browser = Client()
    browser.force_login(world.people[role])
    response = browser.get(_changelist(name))
    assert response.status_code == EXPECTED[name][ROLES.index(role)]
    if role != "superuser":
        assert UNASSIGNED not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "role"),
    [(n, r) for n in SCOPED for r in ROLES if EXPECTED[n][ROLES.index(r)] == OK],
)
def test_scoped_changelist_counts_only_visible_projects(world, name, role):
    browser = Client()
    browser.force_login(world.people[role])
    changelist = browser.get(_changelist(name)).context["cl"]
    assert changelist.result_count == ROWS[role]
    assert changelist.full_result_count == ROWS[role]


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(EXPECTED))
def test_anonymous_is_sent_to_the_login_page(world, name):
    response = Client().get(_changelist(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_project_change_page_of_the_unassigned_project_reads_like_a_missing_one(world, role):
    browser = Client()
    browser.force_login(world.people[role])
    hidden = world.projects[UNASSIGNED].pk
    response = browser.get(reverse("admin:registry_project_change", args=[hidden]))
    if role == "superuser":
        assert response.status_code == 200
    else:
        missing = browser.get(reverse("admin:registry_project_change", args=[10**9]))
        assert (response.status_code, response["Location"]) == (302, missing["Location"])
