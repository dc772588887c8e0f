from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from lineage.api import graph_views, views

router = SimpleRouter(trailing_slash=True)
router.register("code-versions", views.CodeVersionViewSet, basename="codeversion")
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = [
    # openlineage-python posts to `api/v1/lineage` with no trailing slash.
    re_path(r"^lineage/?$", graph_views.LineageView.as_view(), name="lineage"),
    re_path(r"^lineage/batch/?$", graph_views.LineageBatchView.as_view(), name="lineage-batch"),
    re_path(r"^lineage/prov/?$", graph_views.ProvExportView.as_view(), name="lineage-prov"),
    path(
        "model-versions/<int:pk>/upstream",
        graph_views.ModelVersionUpstreamView.as_view(),
        name="modelversion-upstream",
    ),
    path(
        "dataset-versions/<int:pk>/downstream",
        graph_views.DatasetVersionDownstreamView.as_view(),
        name="datasetversion-downstream",
    ),
    *router.urls,
]
