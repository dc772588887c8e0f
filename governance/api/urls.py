from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api import fairness, monitoring, views
from governance.exports.views import DocumentExportViewSet

router = SimpleRouter(trailing_slash=True)
router.register("transition-requests", views.TransitionRequestViewSet, basename="transitionrequest")
router.register("audit-events", views.AuditEventViewSet, basename="auditevent")
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("fairness-audits", fairness.FairnessAuditViewSet, basename="fairnessaudit")
router.register("exports", DocumentExportViewSet, basename="documentexport")
router.register(
    "monitoring/references", monitoring.MonitoringReferenceViewSet, basename="monitoringreference"
)
router.register(
    "monitoring/reports", monitoring.MonitoringReportViewSet, basename="monitoringreport"
)
router.register(
    "monitoring/schedules", monitoring.MonitoringScheduleViewSet, basename="monitoringschedule"
)
router.register(
    "change-control-plans", monitoring.ChangeControlPlanViewSet, basename="changecontrolplan"
)
router.register(
    "monitoring/retraining-tickets",
    monitoring.RetrainingTicketViewSet,
    basename="retrainingticket",
)

urlpatterns = [
    path(
        "model-versions/<int:pk>/transitions/",
        views.ModelVersionTransitionsView.as_view(),
        name="modelversion-transitions",
    ),
    *router.urls,
]
