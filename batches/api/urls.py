"""Routes of the batches API, included under /api/v1/."""

from django.urls import path

from batches.api import views

urlpatterns = [
    path("patients/", views.PatientList.as_view(), name="api-patients"),
    path("patients/<int:pk>/", views.PatientDetail.as_view(), name="api-patient"),
    path("orders/", views.OrderList.as_view(), name="api-orders"),
    path("orders/<int:pk>/", views.OrderDetail.as_view(), name="api-order"),
    path("batches/", views.BatchList.as_view(), name="api-batches"),
    path("batches/<int:pk>/", views.BatchDetail.as_view(), name="api-batch"),
    path("batches/<int:pk>/timeline/", views.BatchTimeline.as_view(), name="api-batch-timeline"),
    path("batches/<int:pk>/steps/", views.BatchStepRecords.as_view(), name="api-batch-steps"),
    path("step-records/<int:pk>/", views.StepRecordDetail.as_view(), name="api-step-record"),
    path("step-records/<int:pk>/verify/", views.StepRecordVerify.as_view(), name="api-step-record-verify"),
    path("donations/<int:pk>/custody-events/", views.DonationCustodyEvents.as_view(), name="api-custody-events"),
    path("deviations/", views.DeviationList.as_view(), name="api-deviations"),
    path("deviations/<int:pk>/", views.DeviationDetail.as_view(), name="api-deviation"),
]
