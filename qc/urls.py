from qc.views import documents, quality, release

app_name = "qc"
urlpatterns = [*quality.urlpatterns, *release.urlpatterns, *documents.urlpatterns]
