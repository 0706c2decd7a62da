"""`pixelcam ui` on the tiny study's real MLflow store, opened in headless Chromium: the printed address shows
the experiment's runs table (the study's parent run), not MLflow 3's GenAI overview; the study's models,
registered with `pixelcam models register`, show in the UI's model registry with their alias, each version
linked to the study's training run that made it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.shared import free_port
from tests.tiny_study import TinyStudy

pytestmark = pytest.mark.e2e


def _printed_url(proc: subprocess.Popen, deadline: float) -> str:
    """The address `pixelcam ui` prints once MLflow answers."""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("MLflow UI: "):
            return line.split()[2]
        assert line or proc.poll() is None, f"pixelcam ui exited {proc.returncode}"
    raise AssertionError("pixelcam ui printed no address within 120 s")


def _body_when(driver, *texts: str, deadline: float) -> str:
    """The page's text once it shows every one of `texts` (the UI renders asynchronously)."""
    from selenium.webdriver.common.by import By

    body = ""
    while time.monotonic() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        if all(t in body for t in texts):
            return body
        time.sleep(0.25)
    raise AssertionError(f"the page never showed {texts}: {body[:1500]}")


def test_ui_opens_the_experiment_runs_table(
    tiny_study: TinyStudy, chrome_page, capsys: pytest.CaptureFixture
):
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(tiny_study.uri).get_experiment_by_name("pixelcam-study-tiny")
    parent = MlflowClient(tiny_study.uri).search_runs([exp.experiment_id], "tags.kind = 'study'")[0]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tiny_study.uri}
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "pixelcam.cli",
        "ui",
        "--experiment",
        "pixelcam-study-tiny",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = chrome_page
    try:
        url = _printed_url(proc, time.monotonic() + 120)
        # one server process by default (MLflow's own default, 4, starts in twice the time and CPU)
        (server,) = [c for c in psutil.Process(proc.pid).children() if "mlflow" in " ".join(c.cmdline())]
        assert server.cmdline()[-2:] == ["--workers", "1"], server.cmdline()
        assert (
            url
            == f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"
        )
        driver.get(url)
        body = _body_when(driver, parent.info.run_name, "Run Name", deadline=time.monotonic() + 90)
        assert "Token Usage" not in body and "Traces\n0" not in body  # not the GenAI overview
        assert "/runs" in driver.current_url
        _registered_versions_link_their_runs(driver, tiny_study, env, url.split("/#/")[0], capsys)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) in (0, -15, 143)


def _registered_versions_link_their_runs(
    driver, tiny_study: TinyStudy, env: dict, base: str, capsys: pytest.CaptureFixture
) -> None:
    """`pixelcam models register` on the study, then in the UI: each model's page lists version 1 with the
    alias; the version's page names its source run and links to the study's training run of that model."""
    import re

    from selenium.webdriver.common.by import By

    from pixelcam.cli import main

    # through the CLI's entry point in this process (a process of its own costs ~5 CPU-s of imports)
    register = ["models", "register", tiny_study.stored, "--alias", "champion"]  # the study on S3
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
        assert main(register) == 0
    out = capsys.readouterr().out
    names = re.findall(r"models:/(\S+)@champion  \(version 1,", out)
    assert names, out
    experiments = (tiny_study.study_dir / "state.json").read_json()["experiments"]
    for name in names:
        key = next(k for k in experiments if name == f"tiny-{k.split('__')[1]}-{k.split('__')[0]}")
        run_id = experiments[key]["mlflow_run_id"]
        driver.get(f"{base}/#/models/{name}")
        _body_when(driver, name, "Version 1", "@ champion", deadline=time.monotonic() + 60)
        driver.get(f"{base}/#/models/{name}/versions/1")
        _body_when(driver, "Source Run", "@ champion", deadline=time.monotonic() + 60)
        links = [a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")]
        assert any(h.endswith(f"/runs/{run_id}") for h in links), (run_id, links)


def test_ui_names_an_unknown_experiment(capsys: pytest.CaptureFixture):
    """Through the CLI's entry point in this process, on the run's MLflow store (`tests/conftest.py`): a new
    process and a new store cost ~8 CPU-s of imports and schema set-up for a one-line refusal."""
    from pixelcam.cli import main
    from pixelcam.tracking import tracking_uri

    assert main(["ui", "--experiment", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"--experiment nope: no such experiment in {tracking_uri()}" in err and "Traceback" not in err
