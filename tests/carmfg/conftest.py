import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from tests.carmfg.signable import SignableNote


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        with connection.schema_editor() as editor:
            editor.create_model(SignableNote)
        # Created (and committed) now: a content type made inside a rolled-back test
        # would stay in Django's cache with an id that no longer exists.
        ContentType.objects.get_for_model(SignableNote)

