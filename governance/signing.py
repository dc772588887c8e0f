"""What a signature binds to, and the password re-check that every signing requires.

21 CFR 11.70: a signature is linked to its record so it cannot be transferred; we bind it to
the SHA-256 of the canonical JSON of exactly what was signed. 11.200(a)(1): each signing
re-asks the password; a wrong one counts toward the account lockout (django-axes).
"""

from django.contrib.auth import authenticate
from django.http import HttpRequest

from governance.audit_chain import canonical_json, sha256_hex
from governance.errors import PasswordRequired
from registry.models import ModelVersion

# The version's stage is left out: applying the transition changes it, and the request
# already names the stages the signature is about.
VERSION_FIELDS = (
    "id",
    "registered_model_id",
    "version",
    "artifact_uri",
    "artifact_sha256",
    "framework",
    "description",
    *ModelVersion.MODEL_CARD_FIELDS,
    "run_id",
    "derived_from_id",
)


def request_record(request) -> dict:
    """The content a transition signature attests to: the request, its evidence gate results
    and the model version's record. The approvals gate is left out: it changes with every
    signature and is not evidence about the model."""
    version = request.model_version
    return {
        "transition_request": {
            "id": request.pk,
            "from_stage": request.from_stage,
            "to_stage": request.to_stage,
            "justification": request.justification,
            "requested_by": request.requested_by_name,
            "policy": str(request.policy),
            "policy_id": request.policy_id,
        },
        "gate_results": [
            {k: g[k] for k in ("name", "passed", "reason")}
            for g in request.gate_results
            if g.get("kind") != "approvals"
        ],
        "model_version": {name: getattr(version, name) for name in VERSION_FIELDS},
        "project": version.registered_model.project.key,
        "model": version.registered_model.name,
    }


def policy_record(policy) -> dict:
    """The content a policy approval attests to: the policy version and its definition."""
    return {
        "policy": {
            "id": policy.pk,
            "name": policy.name,
            "version": policy.version,
            "risk_tier": policy.risk_tier,
            "definition": policy.definition,
        },
    }


def digest(record: dict) -> tuple[str, str]:
    """(canonical JSON, its SHA-256) of a record to sign."""
    text = canonical_json(record)
    return text, sha256_hex(text)


def confirm_password(user, password: str, http_request=None) -> None:
    """Re-authenticate the signer; failures count toward lockout like any failed login."""
    if not password:
        raise PasswordRequired("signing requires your password")
    if http_request is None:
        # Signing outside a web request (a script, a task) still counts toward lockout.
        http_request = HttpRequest()
        http_request.META.update({"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "stagegate"})
    authenticated = authenticate(http_request, username=user.get_username(), password=password)
    if getattr(http_request, "axes_locked_out", False):
        raise PasswordRequired("your account is locked after too many failed attempts")
    if authenticated is None or authenticated.pk != user.pk:
        raise PasswordRequired("the password is not correct; the signature was not recorded")
