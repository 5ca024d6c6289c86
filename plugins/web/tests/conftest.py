"""Fixtures of the web plugin's tests (implemented in :mod:`dms_web.testing`)."""

from dms_web.testing import browser, web, web_plugins  # noqa: F401


def pytest_configure(config):  # noqa: ANN001, ANN201
    config.addinivalue_line("markers", "deployment(text): the deployment TOML the `web` fixture starts")
