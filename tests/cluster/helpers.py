"""Helpers of the cluster tests: free ports, waiting on a server with a deadline, stopping a process group,
the token-authenticated environment of a test cluster, and `ray start` arguments whose every port is free,
so two clusters of two tests never share an agent port."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.shared import free_port, free_ports  # noqa: F401 - the cluster tests take them from here

BIN = Path(sys.executable).parent


def wait_for(check, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet: whatever the probe raises, poll again
            last = exc
        time.sleep(1)
    tail = log.read_text()[-1500:]
    raise AssertionError(f"{what} not ready after {timeout:.0f} s ({last!r}):\n{tail}")


def listening_hosts(port: int) -> set[str]:
    return {
        c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == port
    }


def stop_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group started for `proc` (ray start --block drains for 30 s on SIGTERM)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def token_env(tmp_path: Path, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test cluster and its clients: the secure default, token authentication with
    every API call carrying the cluster's token. A token of the test's own (as `ray get-auth-token
    --generate` makes one), so that a fresh machine needs none in ~/.ray; no RAY_ADDRESS inherited.
    `base`: the environment to start from (a scenario's snapshot), else this process's."""
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {
        **(os.environ if base is None else base),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        **extra,
    }
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)
    return env


AGENT_FLAGS = (
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
    "--ray-client-server-port",
    # left to the OS (port 0), the raylet's own servers could be given a port picked here for an agent: a
    # node's runtime-env agent once failed to bind the port its raylet's object manager had just taken
    "--object-manager-port",
    "--node-manager-port",
)


def agent_ports(*taken: int) -> list[str]:
    """`ray start` flags giving this node's agents and servers free ports of their own, all distinct and none
    of `taken` (the node's other ports, picked before): their defaults are fixed numbers, which a second
    cluster on the same machine cannot bind."""
    ports = [p for p in free_ports(len(AGENT_FLAGS) + len(taken)) if p not in taken][: len(AGENT_FLAGS)]
    return [f"{flag}={port}" for flag, port in zip(AGENT_FLAGS, ports, strict=True)]
