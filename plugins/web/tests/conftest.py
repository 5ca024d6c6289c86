"""Fixtures of the web plugin's tests (implemented in :mod:`dms_web.testing`)."""

from dms_web.testing import web, web_plugins  # noqa: F401
