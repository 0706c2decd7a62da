"""The embedded default's local Ray is guarded by Ray's token authentication: its GCS (which Ray 2.60 binds
to every interface) refuses a client holding another token and accepts one holding the cluster's. It starts
without Ray's dashboard unless PIXELCAM_RAY_DASHBOARD=1 asks for it."""

import json
import os
import subprocess
import sys

import pytest

from tests.shared import scenario, scenario_fixture

PROBE = """
import json, os, subprocess, sys, ray
from pixelcam.runtime.cluster import init_ray
init_ray(num_cpus=1, quiet=True)
addr = ray.get_runtime_context().gcs_address
connect = f"import ray; ray.init(address='{addr}'); print('CONNECTED')"
own = dict(os.environ)
stranger = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
stranger["RAY_AUTH_TOKEN"] = "0" * 64
res = {}
for name, env in (("stranger", stranger), ("own", own)):
    cmd = [sys.executable, "-c", connect]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    res[name] = {"connected": "CONNECTED" in out.stdout, "err": out.stderr[-2000:]}
# Ray's own processes are this driver's children; the dashboard's UI modules would be its head's children
def children(pid):
    out = {}
    for name in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{name}/stat").read() if name.isdigit() else "0) S 0"
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(name)] = open(f"/proc/{name}/cmdline").read().replace("\\0", " ")
        except OSError:
            pass
    return out
children = {cmd: list(children(pid).values()) for pid, cmd in children(os.getpid()).items()}
res["children"] = children
print(json.dumps(res))
ray.shutdown()
"""


@scenario("environment")
def token_probe(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """The probe, started when the run begins: the stranger's client waits ~20 s before Ray gives up."""
    cmd = [sys.executable, "-c", PROBE]  # an explicit environment, as every scenario's (tests/shared.py)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=environment)


token_probe_fixture = scenario_fixture("token_probe")


@pytest.mark.e2e
def test_local_ray_refuses_a_client_without_its_token(token_probe: subprocess.CompletedProcess):
    out = token_probe
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["own"]["connected"], res["own"]["err"]  # the probe itself can connect: the check is real
    assert not res["stranger"]["connected"]
    assert "token" in res["stranger"]["err"].lower()
    # Ray started (its GCS and raylet are the driver's children); its dashboard head runs (Ray's job and state
    # APIs need it) without the UI's module processes
    kids = res["children"]
    assert any("gcs_server" in c for c in kids) and any("raylet" in c for c in kids), kids
    (head,) = [c for c in kids if "dashboard/dashboard.py" in c]
    assert kids[head] == [], kids[head]


def test_the_dashboard_starts_when_asked(monkeypatch: pytest.MonkeyPatch):
    import ray

    from pixelcam.runtime.cluster import DASHBOARD_ENV, init_ray

    asked: list[dict] = []
    monkeypatch.setattr(os, "environ", dict(os.environ))  # init_ray's Ray flags stay in this test
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: asked.append(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(DASHBOARD_ENV, raising=False)
    init_ray(num_cpus=1)
    monkeypatch.setenv(DASHBOARD_ENV, "1")
    init_ray(num_cpus=1)
    assert [kw["include_dashboard"] for kw in asked] == [False, True]


def test_a_local_start_that_times_out_is_started_again_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Ray's raylet aborts when its dashboard agent misses its start-up window on a loaded machine, and
    `ray.init` then raises a bare Exception with Ray's words: the local start is tried again, once, with a
    line on stderr; a second timeout, and any other error, are raised as they are."""
    import ray

    from pixelcam.runtime import cluster

    timeout = Exception(
        "The current node timed out during startup. This could happen because some of the raylet failed to "
        "startup or the GCS has become overloaded."
    )
    calls: list[str] = []

    def init(errors: list[BaseException | None]):
        def fake(**kw):
            calls.append("init")
            error = errors.pop(0)
            if error is not None:
                raise error

        return fake

    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", init([timeout, None]))
    assert cluster.init_ray(num_cpus=1) is None
    assert calls == ["init", "shutdown", "init"]
    assert "Ray's local start timed out" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(ray, "init", init([timeout, timeout]))
    with pytest.raises(Exception, match="timed out during startup"):
        cluster.init_ray(num_cpus=1)
    assert calls == ["init", "shutdown", "init"]
    calls.clear()
    monkeypatch.setattr(ray, "init", init([RuntimeError("no such address")]))
    with pytest.raises(RuntimeError, match="no such address"):
        cluster.init_ray(num_cpus=1)
    assert calls == ["init"]
