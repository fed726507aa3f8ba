"""Password hashing for the demo seed only.

``seed_demo`` signs hundreds of demo records, and every signature re-checks the
signer's password. With Django's PBKDF2 at its full 1,000,000 iterations that alone
took minutes of CPU. The seed therefore stores the demo users' (public, printed)
password with few iterations; Django upgrades each hash to the full work factor at
that user's first login, because the stored iteration count is below the configured
one. Nothing else uses this hasher: it is never in ``PASSWORD_HASHERS``.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class DemoSeedPasswordHasher(PBKDF2PasswordHasher):
    # Same algorithm name as Django's: the configured PBKDF2 hasher verifies these
    # hashes (it reads the iteration count from the hash) and then upgrades them.
    iterations = 1_000
