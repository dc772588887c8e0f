from governance.models.audit import AuditChainHead, AuditEvent
from governance.models.exports import DocumentExport, ExportImmutable
from governance.models.fairness import AuditStatus, FairnessAudit
from governance.models.policies import LifecyclePolicy, PolicyImmutable, ProjectPolicy
from governance.models.transitions import Signature, SignatureAltered, TransitionRequest

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AuditStatus",
    "FairnessAudit",
    "DocumentExport",
    "ExportImmutable",
    "LifecyclePolicy",
    "PolicyImmutable",
    "ProjectPolicy",
    "Signature",
    "SignatureAltered",
    "TransitionRequest",
]
