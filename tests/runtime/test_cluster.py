"""The embedded default's local Ray is guarded by Ray's token authentication: its GCS (which Ray 2.60 binds
to every interface) refuses a client holding another token and accepts one holding the cluster's. It starts
without Ray's dashboard unless PIXELCAM_RAY_DASHBOARD=1 asks for it."""

import os

import pytest

from tests.ray_probe import ray_probe_fixture  # noqa: F401  (the session fixture ray_probe)


@pytest.mark.e2e
def test_local_ray_refuses_a_client_without_its_token(ray_probe: dict):
    assert ray_probe["rc"] == 0, ray_probe["stderr"][-3000:]
    res = ray_probe["result"]
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
