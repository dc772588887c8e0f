"""Routes of the reviewer and compliance pages."""

from django.urls import path

from governance import views

app_name = "governance"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("versions/<int:pk>/", views.version_page, name="version"),
    path("versions/<int:pk>/request/", views.request_transition, name="request-transition"),
    path("requests/<int:pk>/sign/", views.sign_page, name="sign"),
    path("compliance/", views.compliance, name="compliance"),
    path("compliance/verify/", views.verify_chain, name="verify-chain"),
    path("compliance/audit/", views.audit_trail, name="audit-trail"),
    path("compliance/exports/", views.export_create, name="export-create"),
    path("compliance/exports/<int:pk>/", views.export_status, name="export"),
    path("compliance/exports/<int:pk>/verify/", views.export_verify, name="export-verify"),
]
