"""Governance part of the demo: transitions signed and pending, and a fairness audit.

Run after `load_demo` (the Makefile's `make run` does both). Idempotent: skipped when the
demo versions already have transition requests.
"""

import io

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config.request_context import acting_as
from governance import transitions
from governance.fairness import audits
from governance.models import TransitionRequest
from registry.management.commands.load_demo import DEMO_PASSWORD
from registry.models import ModelVersion


def _fairness_predictions(rows: int, seed: int) -> bytes:
    """Predictions with the credit data's sensitive columns, about as fair as a good model."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, size=rows)
    y_pred = np.where(rng.random(rows) < 0.81, y_true, 1 - y_true)
    frame = pd.DataFrame(
        {
            "y_true": y_true,
            "y_pred": y_pred,
            "sex": rng.choice(["female", "male"], size=rows),
            "age_band": rng.choice(
                ["18-25", "26-40", "41-65", "65+"], size=rows, p=[0.15, 0.35, 0.35, 0.15]
            ),
        }
    )
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


class Command(BaseCommand):
    help = "Load the governance demo: signed and pending transitions, a fairness audit."

    def handle(self, *args, **options):
        versions = ModelVersion.objects.select_related("registered_model__project")
        try:
            credit_v1 = versions.get(registered_model__name="default-scorer", version=1)
            credit_v2 = versions.get(registered_model__name="default-scorer", version=2)
            readmission = versions.get(registered_model__name="readmission-risk", version=1)
        except ModelVersion.DoesNotExist:
            raise CommandError("run `manage.py load_demo` first") from None
        if TransitionRequest.objects.filter(model_version=credit_v1).exists():
            self.stdout.write("Governance demo already loaded.")
            return
        users = {
            u.username: u
            for u in get_user_model().objects.filter(username__in=["dana", "rory", "casey"])
        }
        dana, rory = users["dana"], users["rory"]
        with transaction.atomic(), acting_as(dana, reason="demo data"):
            for version in (credit_v1, credit_v2):
                request = transitions.request_transition(
                    version,
                    "validation",
                    actor=dana,
                    justification="Training complete; lineage and model card recorded.",
                )
                transitions.sign(
                    request,
                    signer=rory,
                    meaning="approved",
                    password=DEMO_PASSWORD,
                    comment="Lineage and card checked.",
                )
            test_data = credit_v2.evaluations.get().dataset_version
            audits.request_audit(
                credit_v2,
                actor=dana,
                dataset_version=test_data,
                upload=ContentFile(
                    _fairness_predictions(test_data.row_count, seed=11), name="fairness.csv"
                ),
                sensitive_features=["sex", "age_band"],
            )
        # The audit task runs when the transaction above commits (eagerly without a broker).
        with acting_as(dana, reason="demo data"):
            transitions.request_transition(
                credit_v2,
                "approved",
                actor=dana,
                justification="Beats v1 on AUC on the holdout set; requesting approval.",
            )
            transitions.request_transition(
                readmission,
                "validation",
                actor=dana,
                justification="First candidate for clinical validation.",
            )
        self.stdout.write(self.style.SUCCESS("Governance demo loaded."))
