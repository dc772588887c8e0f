"""Roles are Django groups, each with the model-level permissions its work needs.

A role says what kind of thing a person may do; the per-project rights (guardian object
permissions) say where. An action needs both: e.g. registering a model version needs the
data scientist's `registry.add_modelversion` and the `contribute` right on that project.
"""

from django.db.models import TextChoices


class Role(TextChoices):
    DATA_SCIENTIST = "data scientist", "Data scientist"
    REVIEWER = "reviewer", "Reviewer"
    COMPLIANCE_OFFICER = "compliance officer", "Compliance officer"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"


_VIEW_ALL = [
    "registry.view_project",
    "registry.view_riskitem",
    "registry.view_registeredmodel",
    "registry.view_modelversion",
    "registry.view_dataset",
    "registry.view_datasetversion",
    "registry.view_evaluation",
    "lineage.view_codeversion",
    "lineage.view_run",
    "lineage.view_receivedevent",
]

# Permissions of apps not migrated yet are skipped and added when they appear (post_migrate).
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.DATA_SCIENTIST: [
        *_VIEW_ALL,
        "registry.add_registeredmodel",
        "registry.change_registeredmodel",
        "registry.add_modelversion",
        "registry.change_modelversion",
        "registry.add_dataset",
        "registry.change_dataset",
        "registry.add_datasetversion",
        "registry.add_evaluation",
        "registry.add_riskitem",
        "registry.change_riskitem",
        "lineage.add_codeversion",
        "lineage.add_run",
        "lineage.change_run",
        "governance.add_transitionrequest",
        "governance.add_fairnessaudit",
        "governance.add_monitoringreport",
        # They run the model: they set how often it is re-checked and propose the plan for
        # retraining it (a compliance officer approves the plan).
        "governance.add_monitoringschedule",
        "governance.change_monitoringschedule",
        "governance.add_changecontrolplan",
    ],
    # Reviewers read exported documents (where they hold the project's export right) but do
    # not request them.
    Role.REVIEWER: [
        *_VIEW_ALL,
        "governance.add_signature",
        "governance.view_transitionrequest",
        "governance.view_documentexport",
    ],
    Role.COMPLIANCE_OFFICER: [
        *_VIEW_ALL,
        "registry.add_project",
        "registry.change_project",
        "registry.add_riskitem",
        "registry.change_riskitem",
        "governance.add_signature",
        "governance.view_transitionrequest",
        "governance.add_documentexport",
        "governance.view_documentexport",
        "governance.view_auditevent",
        "governance.add_lifecyclepolicy",
        "governance.view_lifecyclepolicy",
        # Monitoring is a control they oversee; approving a change-control plan is signing it.
        "governance.add_monitoringschedule",
        "governance.change_monitoringschedule",
        "governance.change_changecontrolplan",
    ],
    Role.AUDITOR: [
        *_VIEW_ALL,
        "governance.view_transitionrequest",
        "governance.view_signature",
        "governance.view_auditevent",
        "governance.view_documentexport",
        "governance.view_fairnessaudit",
        "governance.view_lifecyclepolicy",
        "registry.view_accesschange",
    ],
    Role.ADMIN: [
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "auth.add_group",
        "auth.change_group",
        "registry.view_project",
        "registry.add_project",
        "registry.add_projectuserobjectpermission",
        "registry.change_projectuserobjectpermission",
        "registry.delete_projectuserobjectpermission",
        "registry.view_projectuserobjectpermission",
        "registry.add_projectgroupobjectpermission",
        "registry.change_projectgroupobjectpermission",
        "registry.delete_projectgroupobjectpermission",
        "registry.view_projectgroupobjectpermission",
        "registry.view_accesschange",
        "axes.view_accessattempt",
        "axes.view_accessfailurelog",
        "axes.delete_accessattempt",
    ],
}


def sync_role_permissions(group_model, permission_model) -> None:
    """Create the role groups and give each its permissions (idempotent)."""
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = set()
        for name in names:
            app_label, codename = name.split(".")
            wanted.update(
                permission_model.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).values_list("pk", flat=True)
            )
        group.permissions.add(*wanted)
