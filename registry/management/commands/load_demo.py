"""Load the demo: two high-risk projects, their data, runs, versions and demo users.

Everything is created through the real actions, so the demo has the same history, lineage
graph and audit trail as real use. Running it twice changes nothing.
"""

import hashlib
import io

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction

from config.request_context import acting_as
from lineage import services as lineage
from registry import services as registry
from registry.choices import ProjectRight, RiskTier, Split, TaskType
from registry.models import Project
from registry.roles import Role

# Demo-only credentials, printed by `make run`. Never use them anywhere real.
DEMO_PASSWORD = "stagegate-demo"  # noqa: S105
DEMO_USERS = [
    ("dana", "Dana Scientist", Role.DATA_SCIENTIST),
    ("rory", "Rory Reviewer", Role.REVIEWER),
    ("riley", "Riley Second-Reviewer", Role.REVIEWER),
    ("casey", "Casey Compliance", Role.COMPLIANCE_OFFICER),
    ("avery", "Avery Auditor", Role.AUDITOR),
    ("admin", "Ada Admin", Role.ADMIN),
]
RIGHTS_OF_ROLE = {
    Role.DATA_SCIENTIST: [ProjectRight.VIEW, ProjectRight.CONTRIBUTE],
    Role.REVIEWER: [ProjectRight.VIEW, ProjectRight.REVIEW],
    Role.COMPLIANCE_OFFICER: [
        ProjectRight.VIEW,
        ProjectRight.REVIEW,
        ProjectRight.EXPORT,
        ProjectRight.MANAGE,
    ],
    Role.AUDITOR: [ProjectRight.VIEW, ProjectRight.EXPORT],
    Role.ADMIN: [],
}

SCHEMA_CREDIT = [
    {"name": "income", "type": "float"},
    {"name": "debt_ratio", "type": "float"},
    {"name": "age_band", "type": "category"},
    {"name": "sex", "type": "category"},
    {"name": "defaulted", "type": "integer"},
]
SCHEMA_READMISSION = [
    {"name": "age", "type": "integer"},
    {"name": "diagnosis", "type": "category"},
    {"name": "prior_admissions", "type": "integer"},
    {"name": "sex", "type": "category"},
    {"name": "readmitted_30d", "type": "integer"},
]


def _predictions(rows: int, seed: int, quality: float) -> bytes:
    """A seeded predictions CSV whose accuracy is about `quality`."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, size=rows)
    correct = rng.random(rows) < quality
    y_pred = np.where(correct, y_true, 1 - y_true)
    y_score = np.clip(np.where(y_pred == 1, 0.7, 0.3) + rng.normal(0, 0.15, rows), 0, 1)
    out = io.StringIO()
    out.write("y_true,y_pred,y_score\n")
    for t, p, s in zip(y_true, y_pred, y_score, strict=True):
        out.write(f"{t},{p},{s:.4f}\n")
    return out.getvalue().encode()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Command(BaseCommand):
    help = "Load the demo projects, data and users (idempotent)."

    def handle(self, *args, **options):
        if Project.objects.filter(key="credit-risk").exists():
            self.stdout.write("Demo data already loaded.")
            return
        with transaction.atomic():
            users = self._users()
            with acting_as(users["admin"], reason="demo data"):
                credit = self._credit_project(users)
                readmission = self._readmission_project(users)
            for project in (credit, readmission):
                for username, _, role in DEMO_USERS:
                    registry.grant_project_rights(
                        project, users[username], RIGHTS_OF_ROLE[role], actor=users["admin"]
                    )
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))

    def _users(self):
        User = get_user_model()
        users = {}
        for username, full_name, role in DEMO_USERS:
            first, last = full_name.split(" ", 1)
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_staff = role in (Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.AUDITOR)
                user.is_superuser = role == Role.ADMIN
                user.save()
            user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _credit_project(self, users):
        dana = users["dana"]
        project = registry.create_project(
            actor=users["admin"],
            owner=dana,
            key="credit-risk",
            name="Retail credit-risk scorer",
            description="Scores consumer loan applications for probability of default.",
            business_objective="Reduce defaults while keeping approvals fair across groups.",
            intended_use="Decision support for loan officers; a human makes the final decision.",
            out_of_scope_uses="Fully automated rejection; use on business loans.",
            risk_tier=RiskTier.HIGH,
            acceptance_criteria=[
                {"metric": "roc_auc", "threshold": 0.75, "direction": "higher", "split": "test"},
                {"metric": "accuracy", "threshold": 0.70, "direction": "higher", "split": "test"},
            ],
        )
        registry.add_risk(
            project,
            actor=dana,
            description="Proxy discrimination through postcode features.",
            likelihood="medium",
            impact="high",
            mitigation="Postcode removed; fairness audit per sex and age band before release.",
            detection="Quarterly fairness drift check.",
        )
        registry.add_risk(
            project,
            actor=dana,
            description="Income data self-reported and unverified.",
            likelihood="high",
            impact="medium",
            mitigation="Cap influence of income feature.",
            detection="Monitoring of income distribution drift.",
            status="mitigated",
        )
        applications = registry.register_dataset(
            project,
            actor=dana,
            name="loan-applications",
            description="Historical loan applications with 24-month default outcome.",
        )
        versions = {}
        for split, rows in ((Split.TRAIN, 48_000), (Split.TEST, 2_000)):
            versions[split], _ = registry.register_dataset_version(
                applications,
                actor=dana,
                content_sha256=_sha(f"credit-{split}-2025"),
                uri=f"s3://demo-bank/credit/applications-2025-{split}.parquet",
                row_count=rows,
                schema=SCHEMA_CREDIT,
                split=split,
                motivation="Train and validate the scorer.",
                composition="One row per application, 2019–2024.",
                collection_process="Exported from the loan origination system.",
                preprocessing="Deduplicated; postcode dropped.",
                known_biases="Applicants under 25 are under-represented.",
                sensitive_attributes=["sex", "age_band"],
            )
        code = lineage.register_code_version(
            project,
            actor=dana,
            repository_url="https://git.example.com/risk/credit-scorer",
            commit_sha="3f6c2a9d1e8b7c4a5f0e9d8c7b6a5f4e3d2c1b0a",
            branch="main",
        )
        model = registry.register_model(
            project,
            actor=dana,
            name="default-scorer",
            task_type=TaskType.BINARY,
            description="Gradient-boosted probability of default.",
        )
        previous = None
        for number, (quality, depth) in enumerate(((0.74, 3), (0.81, 5)), start=1):
            run = lineage.create_run(
                project,
                actor=dana,
                name="train-default-scorer",
                kind="training",
                status="completed",
                code_version=code,
                parameters={"learning_rate": 0.05, "max_depth": depth, "n_estimators": 400},
                environment={"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
                metrics={"train_logloss": round(0.52 - 0.04 * number, 3)},
                input_datasets=[versions[Split.TRAIN]],
            )
            version = registry.register_model_version(
                model,
                actor=dana,
                run=run,
                derived_from=previous,
                artifact_uri=f"s3://demo-bank/models/default-scorer/{number}/model.pkl",
                artifact_sha256=_sha(f"default-scorer-{number}"),
                framework="scikit-learn 1.9.1",
                intended_use="Decision support for consumer loan applications.",
                factors="Sex and age band evaluated as sensitive factors.",
                limitations="Not validated for applicants without credit history.",
                ethical_considerations="Adverse-action reasons must be given to applicants.",
                caveats="Retrain yearly; monitor income drift.",
            )
            predictions = _predictions(2_000, seed=number, quality=quality)
            registry.record_evaluation(
                version,
                versions[Split.TEST],
                actor=dana,
                predictions=ContentFile(predictions, name="predictions.csv"),
            )
            previous = version
        return project

    def _readmission_project(self, users):
        dana = users["dana"]
        project = registry.create_project(
            actor=users["admin"],
            owner=dana,
            key="readmission",
            name="Hospital 30-day readmission",
            risk_tier=RiskTier.HIGH,
            description="Flags inpatients at high risk of readmission within 30 days.",
            business_objective="Target follow-up care to the patients who need it most.",
            intended_use="Prioritise discharge follow-up calls; clinicians decide.",
            out_of_scope_uses="Denial or rationing of care; paediatric patients.",
            acceptance_criteria=[
                {"metric": "recall", "threshold": 0.7, "direction": "higher", "split": "test"},
            ],
        )
        registry.add_risk(
            project,
            actor=dana,
            description="Under-prediction for patients with sparse records.",
            likelihood="medium",
            impact="high",
            mitigation="Minimum-record rule; clinician review.",
            detection="Monthly recall check per age group.",
        )
        encounters = registry.register_dataset(
            project,
            actor=dana,
            name="encounters",
            description="Inpatient encounters 2020–2024.",
        )
        test, _ = registry.register_dataset_version(
            encounters,
            actor=dana,
            content_sha256=_sha("readmission-test-2024"),
            uri="s3://demo-hospital/encounters-test.parquet",
            row_count=1_000,
            schema=SCHEMA_READMISSION,
            split=Split.TEST,
            sensitive_attributes=["sex"],
            motivation="Validate the readmission model.",
            composition="One row per encounter.",
        )
        train, _ = registry.register_dataset_version(
            encounters,
            actor=dana,
            content_sha256=_sha("readmission-train-2024"),
            uri="s3://demo-hospital/encounters-train.parquet",
            row_count=30_000,
            schema=SCHEMA_READMISSION,
            split=Split.TRAIN,
            sensitive_attributes=["sex"],
        )
        code = lineage.register_code_version(
            project,
            actor=dana,
            repository_url="https://git.example.com/clinical/readmission",
            commit_sha="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            branch="release/1.0",
        )
        run = lineage.create_run(
            project,
            actor=dana,
            name="train-readmission",
            kind="training",
            status="completed",
            code_version=code,
            parameters={"C": 0.5, "penalty": "l2"},
            environment={"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
            input_datasets=[train],
        )
        model = registry.register_model(
            project,
            actor=dana,
            name="readmission-risk",
            task_type=TaskType.BINARY,
        )
        version = registry.register_model_version(
            model,
            actor=dana,
            run=run,
            artifact_uri="s3://demo-hospital/models/readmission/1",
            artifact_sha256=_sha("readmission-1"),
            framework="scikit-learn 1.9.1",
            intended_use="Prioritise follow-up after discharge.",
        )
        registry.record_evaluation(
            version,
            test,
            actor=dana,
            predictions=ContentFile(_predictions(1_000, seed=7, quality=0.78), name="p.csv"),
        )
        return project
