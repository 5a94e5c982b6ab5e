"""The report page in a real browser (headless Chromium): every image loads, the
tables are there, nothing overflows the page. Without Chromium it skips with one
line on a developer's machine and fails under CI (`CI` set), where .ci/run installs it."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reports.build import build_report
from reports.synthetic import make_run

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
INSTALL = "apt-get install -y chromium chromium-driver (and pip install selenium)"
IMAGES = "return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"


def _missing(reason: str) -> None:
    """Under CI the browser is part of the job: its absence is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: {INSTALL}")
    pytest.skip(f"{reason} (CI installs it): {INSTALL}")


def chrome(tmp_path: Path, monkeypatch):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        _missing("headless Chromium is needed for the report test")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def test_report_renders_in_chromium(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run", prompts=2, samples=8, steps=6, protection=True)
    index = build_report(run)
    browser = chrome(tmp_path, monkeypatch)
    try:
        browser.set_page_load_timeout(30)
        browser.get(index.as_uri())
        images = browser.execute_script(IMAGES)
        tables = browser.execute_script(
            "return Array.from(document.querySelectorAll('table.data'))"
            ".map(t => [t.dataset.table, t.tBodies[0].rows.length])"
        )
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1400, min(height + 100, 16000))
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    broken = [src for src, width in images if not width]
    assert len(images) >= 10 and not broken, f"images that did not load: {broken}"
    found = dict(tables)
    for name in (
        "method-configs",
        "table1-defaults",
        "table2-protection",
        "table4-sweeps",
        "table5-cost",
    ):
        assert found.get(name, 0) > 0, f"table {name} missing or empty: {found}"
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    if os.environ.get("SPELLBENCH_REPORT_SCREENSHOT"):  # keep it, to look at
        shutil.copy(shot, os.environ["SPELLBENCH_REPORT_SCREENSHOT"])
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape[0] > 1000 and pixels.std() > 10, "the screenshot looks blank"


def test_a_missing_browser_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install"):
        _missing("no browser")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="CI installs it"):
        _missing("no browser")
