"""The demo seed hashes its public password cheaply; a login restores the full work factor."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test.utils import override_settings

from carmfg.accounts.hashers import DemoSeedPasswordHasher
from carmfg.accounts.services import user_create

DJANGO_DEFAULT = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
SEED = ["carmfg.accounts.hashers.DemoSeedPasswordHasher", *DJANGO_DEFAULT]


@pytest.mark.django_db
def test_seeded_password_is_cheap_during_the_seed_and_upgraded_at_first_login():
    with override_settings(PASSWORD_HASHERS=SEED):
        user = user_create(actor=None, username="seeded", full_name="Seeded User",
                           email="seeded@test.invalid", password="demo-password-1")
        assert user.password.startswith(f"pbkdf2_sha256${DemoSeedPasswordHasher.iterations}$")
        # During the seed, a signature's password check keeps the cheap hash.
        assert user.check_password("demo-password-1")
        user.refresh_from_db()
        assert user.password.startswith(f"pbkdf2_sha256${DemoSeedPasswordHasher.iterations}$")

    with override_settings(PASSWORD_HASHERS=DJANGO_DEFAULT):
        assert not user.check_password("wrong")
        assert user.check_password("demo-password-1")
        user.refresh_from_db()
        assert user.password.startswith(f"pbkdf2_sha256${PBKDF2PasswordHasher.iterations}$")
