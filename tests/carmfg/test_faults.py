"""A lost database connection is told to the user as "not saved, try again" (503),
never a 500, on pages, htmx fragments and the API. The end-to-end case, with a real
PostgreSQL backend killed mid-save, is in tests/batches/test_faults_steps.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from carmfg.api.errors import problem_details_handler
from carmfg.errors import GMPErrorMiddleware

pytestmark = pytest.mark.django_db


def _request(*, htmx: bool):
    request = RequestFactory().post("/batches/1/steps/2/record/")
    request.user = AnonymousUser()
    request.htmx = htmx  # type: ignore[attr-defined]  # set by django-htmx's middleware
    return request


@pytest.mark.parametrize("error", [OperationalError("terminating connection due to administrator command"),
                                   InterfaceError("connection already closed")])
@pytest.mark.parametrize("htmx", [False, True])
def test_a_lost_database_connection_is_a_503_saying_not_saved_try_again(error, htmx):
    response = GMPErrorMiddleware(lambda r: None).process_exception(_request(htmx=htmx), error)

    assert response is not None
    assert response.status_code == 503
    text = response.content.decode()
    assert "Not saved" in text
    assert "try again" in text
    assert "administrator command" not in text  # the server's words stay in the log


def test_an_unrelated_error_is_left_to_django():
    assert GMPErrorMiddleware(lambda r: None).process_exception(_request(htmx=False), ValueError("bug")) is None


def test_the_api_answers_a_lost_connection_with_a_503_problem():
    response = problem_details_handler(OperationalError("server closed the connection unexpectedly"), {})

    assert response is not None
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert "try again" in response.data["detail"]
