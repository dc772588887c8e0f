"""Settings for the test suite: the real settings plus a fast password hasher.

The hasher is swapped for speed only here (hundreds of users are created per run); the
benchmarks and every other mode use Django's default PBKDF2 hasher.
"""

import os

os.environ.setdefault("DEBUG", "1")

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = VAR_DIR / "test-media"  # noqa: F405

# Tasks run in process in the suite; tests marked `broker` start a real worker on the
# configured broker instead (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = True
