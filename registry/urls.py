"""Routes of the registry pages."""

from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
