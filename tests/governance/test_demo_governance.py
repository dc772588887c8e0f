"""The governance demo loads signed and pending transitions and an audit, once."""

import pytest
from django.core.management import call_command

from governance.audit_chain import verify
from governance.models import FairnessAudit, Signature, TransitionRequest

pytestmark = pytest.mark.django_db


def test_governance_demo_loads_once_with_a_valid_chain(django_capture_on_commit_callbacks):
    call_command("load_demo")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo_governance")
    assert TransitionRequest.objects.filter(status="applied").count() == 2
    assert TransitionRequest.objects.filter(status="pending").count() == 2
    assert Signature.objects.filter(printed_name="Rory Reviewer").count() == 2
    assert FairnessAudit.objects.get().status == "done"
    call_command("load_demo_governance")
    assert TransitionRequest.objects.count() == 4
    assert verify().valid
