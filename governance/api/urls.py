from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api import fairness, views
from governance.exports.views import DocumentExportViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("transition-requests", views.TransitionRequestViewSet, basename="transitionrequest")
router.register("audit-events", views.AuditEventViewSet, basename="auditevent")
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("fairness-audits", fairness.FairnessAuditViewSet, basename="fairnessaudit")
router.register("exports", DocumentExportViewSet, basename="documentexport")

urlpatterns = [
    path(
        "model-versions/<int:pk>/transitions/",
        views.ModelVersionTransitionsView.as_view(),
        name="modelversion-transitions",
    ),
    *router.urls,
]
