"""Liveness/readiness for docker-compose and load balancers: the database answers."""

from django.db import connection
from django.http import JsonResponse
from django.urls import path


def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


urlpatterns = [path("", healthz, name="healthz")]
