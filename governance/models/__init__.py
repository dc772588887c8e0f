from governance.models.audit import AuditChainHead, AuditEvent
from governance.models.exports import DocumentExport, ExportImmutable
from governance.models.fairness import AuditStatus, FairnessAudit
from governance.models.monitoring import (
    BatchSource,
    ChangeControlPlan,
    CheckStatus,
    MonitoringBreach,
    MonitoringKind,
    MonitoringReference,
    MonitoringReport,
    MonitoringSchedule,
    PlanStatus,
    RetrainingTicket,
    TicketStatus,
)
from governance.models.policies import LifecyclePolicy, PolicyImmutable, ProjectPolicy
from governance.models.transitions import Signature, SignatureAltered, TransitionRequest

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AuditStatus",
    "ChangeControlPlan",
    "BatchSource",
    "CheckStatus",
    "FairnessAudit",
    "DocumentExport",
    "ExportImmutable",
    "LifecyclePolicy",
    "MonitoringBreach",
    "MonitoringKind",
    "MonitoringReference",
    "MonitoringReport",
    "MonitoringSchedule",
    "PlanStatus",
    "PolicyImmutable",
    "ProjectPolicy",
    "RetrainingTicket",
    "Signature",
    "SignatureAltered",
    "TicketStatus",
    "TransitionRequest",
]
