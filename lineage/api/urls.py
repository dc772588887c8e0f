from rest_framework.routers import SimpleRouter

from lineage.api import views

router = SimpleRouter(trailing_slash="/?")
router.register("code-versions", views.CodeVersionViewSet, basename="codeversion")
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = router.urls
