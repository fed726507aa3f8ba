"""Routes of the QC API, included under /api/v1/."""

from django.urls import path

from qc.api import views

urlpatterns = [
    path("batches/<int:pk>/qc-results/", views.BatchResults.as_view(), name="api-batch-qc-results"),
    path("qc-results/<int:pk>/", views.ResultDetail.as_view(), name="api-qc-result"),
    path("qc-results/<int:pk>/review/", views.ResultReview.as_view(), name="api-qc-result-review"),
    path("batches/<int:pk>/certifications/", views.BatchCertifications.as_view(), name="api-batch-certifications"),
    path("batches/<int:pk>/records/", views.BatchRecords.as_view(), name="api-batch-records"),
    path("batch-records/<int:pk>/", views.RecordDetail.as_view(), name="api-batch-record"),
    path("batch-records/<int:pk>/download/", views.RecordDownload.as_view(), name="api-batch-record-download"),
]
