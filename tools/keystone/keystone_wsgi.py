"""Gunicorn entry point for Keystone (``keystone_wsgi:application``).

Keystone's WSGI module hands ``sys.argv`` to oslo.config, which would try to parse gunicorn's own
command line and fail; so reset it before importing. Configuration comes from
``OS_KEYSTONE_CONFIG_FILES``.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
