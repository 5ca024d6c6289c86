"""Network fixtures for the Ethernet protocols (GOOSE, Sampled Values): veth pairs, one end in a
network namespace or both here. They need root and ``ip`` (iproute2): without them the tests
skip with the reason, but with ``CI`` set they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=20)


def _require_root_and_ip() -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "the Ethernet protocol tests need root (network namespace, raw sockets)"
    elif shutil.which("ip") is None:
        reason = "the Ethernet protocol tests need the `ip` tool (iproute2)"
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI is set, so this is an error")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def veth(request):
    """(namespace, our end, the namespace's end) of a veth pair into a fresh namespace; removed in any case."""
    _require_root_and_ip()
    tag = f"{request.module.__name__.rsplit('_', 1)[-1][:5]}{os.getpid()}"
    ns, outside, inside = f"leitstand-{tag}", f"v{tag}a", f"v{tag}b"
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", ns)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "-n", ns, "link", "set", inside, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        yield SimpleNamespace(ns=ns, outside=outside, inside=inside)
    finally:
        _run("ip", "link", "del", outside, check=False)  # removes the peer as well
        _run("ip", "netns", "del", ns, check=False)


@pytest.fixture
def veth_pair():
    """A veth pair with both ends in this namespace: frames sent on one end arrive on the other."""
    _require_root_and_ip()
    pid = os.getpid()
    a, b = f"vmu{pid}a", f"vmu{pid}b"
    try:
        _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        _run("ip", "link", "set", a, "up")
        _run("ip", "link", "set", b, "up")
        yield SimpleNamespace(publish=a, receive=b)
    finally:
        _run("ip", "link", "del", a, check=False)
