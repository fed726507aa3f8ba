from django.urls import path

from carmfg.audit import views

urlpatterns = [
    path("", views.audit_list, name="audit_list"),
    path("export.<str:fmt>", views.audit_export, name="audit_export"),
]
