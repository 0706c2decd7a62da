"""The tiny study's dashboard rendered in a real headless Chromium (Debian `chromium` + `chromium-driver`,
installed by .ci/run): every section present with its figures loaded, and no console errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pixelcam.cli import main
from pixelcam.report import SECTION_IDS
from tests.tiny_study import TinyStudy

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser(profile: Path):
    """A new headless Chromium session on `profile` (tests use the run's one, the `chrome_page` fixture)."""
    from selenium import webdriver

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "headless Chromium is required: apt-get install chromium chromium-driver (.ci/run does this)"
    )
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=opts)


def test_dashboard_renders_in_headless_chromium(tiny_study: TinyStudy, tmp_path: Path, chrome_page):
    from selenium.webdriver.common.by import By

    assert (tiny_study.study_dir / "dashboard.html").is_file()  # written by `study run` itself, to the bucket
    out = tmp_path / "report.html"
    # the study named by its URI (its parent run id is read from the bucket's state), through the CLI's entry
    # point in this process (a process of its own costs ~5 CPU-s of imports)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", tiny_study.uri)
        assert main(["dashboard", tiny_study.stored, "--out", str(out)]) == 0
    page = out.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline, no scripts

    driver = chrome_page
    try:
        driver.get(out.as_uri())
        assert driver.title == "pixelcam study: tiny"
        for sid in SECTION_IDS:
            section = driver.find_element(By.ID, sid)
            imgs = section.find_elements(By.TAG_NAME, "img")
            if sid == "hyperparameters":  # the tiny study fixes lambda and n: the panel says so, no dot
                assert not imgs and "lambda and n were not searched" in section.text, section.text[:300]
                continue
            assert imgs, f"section {sid} has no figure: {section.text[:300]}"
            assert not section.find_elements(By.CLASS_NAME, "empty"), sid
            for img in imgs:
                ok = driver.execute_script(
                    "const i = arguments[0];"
                    "return i.complete && i.naturalWidth > 100 && i.naturalHeight > 50;",
                    img,
                )
                assert ok, f"an image of section {sid} did not load: {img.get_attribute('alt')}"
        gallery = driver.find_element(By.ID, "cam-gallery").find_elements(By.TAG_NAME, "img")
        assert len(gallery) == 2  # synth-colon -> {synth-colon, synth-lymph}
        tests_table = driver.find_element(By.CSS_SELECTOR, "#pixelcam-vs-baseline table")
        assert "synth-colon -> synth-lymph" in tests_table.text
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        height = driver.execute_script("return document.documentElement.scrollHeight")
        chrome = driver.execute_script("return window.outerHeight - window.innerHeight")  # the window's frame
        driver.set_window_size(1400, min(int(height) + int(chrome), 16000))  # the whole page in one shot
        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 50_000
        keep = os.environ.get("PIXELCAM_KEEP_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)
    finally:
        driver.set_window_size(1400, 1000)
