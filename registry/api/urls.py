from django.urls import path
from rest_framework.routers import SimpleRouter

from registry.api import views
from registry.api.auth import ObtainTokenView

router = SimpleRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="project")
router.register("risks", views.RiskItemViewSet, basename="risk")
router.register("models", views.RegisteredModelViewSet, basename="registeredmodel")
router.register("model-versions", views.ModelVersionViewSet, basename="modelversion")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("dataset-versions", views.DatasetVersionViewSet, basename="datasetversion")
router.register("evaluations", views.EvaluationViewSet, basename="evaluation")

urlpatterns = [
    path("auth/token", ObtainTokenView.as_view(), name="auth-token"),
    *router.urls,
]
