from qc.views import dashboard, documents, quality, release

app_name = "qc"
urlpatterns = [*quality.urlpatterns, *release.urlpatterns, *documents.urlpatterns, *dashboard.urlpatterns]
