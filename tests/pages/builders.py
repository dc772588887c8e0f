"""Builders for the page tests: versions moved through real requests and signatures."""

from governance import policies, transitions
from governance.policy_rules import default_definition
from registry import services as registry
from registry.choices import RiskStatus
from tests import factories
from tests.factories import PASSWORD

BACKEND = "registry.access.ModelBackend"


def login(client, user):
    """Sign `client` in as `user` (the model backend: no password check needed here)."""
    client.force_login(user, backend=BACKEND)
    return client


def promote(version, path, *, requester, signers):
    """Move `version` along `path` (stages), each step requested and then approved by
    `signers` (each signs every step; the rule decides how many are needed)."""
    request = None
    for stage in path:
        request = transitions.request_transition(
            version, stage, actor=requester, justification=f"ready for {stage}"
        )
        for signer in signers:
            request.refresh_from_db()
            if not request.is_open:
                break
            transitions.sign(
                request, signer=signer, meaning="approved", password=PASSWORD, comment="checked"
            )
        request.refresh_from_db()
        assert request.status == "applied", (stage, request.gate_results)
        version.refresh_from_db()
    return request


def pending_requests(project, requester, count):
    """`count` pending development → validation requests, one per version of one model."""
    code = factories.code_version(project, requester)
    data = factories.dataset_version(project, requester, name="training", split="train")
    run = factories.run(project, requester, inputs=[data], code=code)
    model = factories.registered_model(project, requester)
    card = {"intended_use": "scoring", "limitations": "none known"}
    made = []
    for n in range(count):
        version = factories.model_version(model, requester, run=run, **card)
        made.append(
            transitions.request_transition(
                version, "validation", actor=requester, justification=f"candidate {n}"
            )
        )
    return made


def high_risk_policy_without_fairness(project, *, author, approver):
    """Bind `project` to an approved copy of the high-risk default policy without the
    fairness check (fairness audits are not recorded yet)."""
    definition = default_definition("high")
    for rule in definition["transitions"]:
        rule["checks"] = [c for c in rule["checks"] if c != "fairness_audit_passed"]
    policy = policies.propose_policy_version(
        actor=author,
        name=f"{project.key}-high-without-fairness",
        risk_tier="high",
        definition=definition,
        description="High-risk default without the fairness gate, until fairness audits land.",
    )
    policies.approve_policy_version(policy, signer=approver, password=PASSWORD)
    policy.refresh_from_db()
    policies.bind_policy(project, policy, actor=author, reason="fairness audits not available")
    return policy


def mitigate_open_risks(project, actor):
    for risk in project.risks.filter(status=RiskStatus.OPEN):
        registry.update_risk(risk, actor=actor, status=RiskStatus.MITIGATED, reason="mitigated")
