"""The report as a person sees it: opened from disk in headless Chromium (Debian's chromium + chromium-driver).

`make test` installs them when missing; without them this test is skipped, except in CI (CI=true), where it
fails. The screenshot of the summary matrix is kept at $OPBENCH_SCREENSHOT when that is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from builders import MARKUP_DEVICE

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        message = "headless Chromium needs Debian's chromium and chromium-driver (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="opbench-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))  # no driver download: Debian's
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_report_opens_from_disk_with_images_no_console_errors_and_escaped_names(browser, full_report: Path, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(full_report.resolve().as_uri())
    matrix = browser.find_element(By.ID, "summary-matrix")
    assert matrix.is_displayed()
    header = matrix.find_element(By.TAG_NAME, "thead").text
    assert "Lab <b>box</b> <script>alert('x')</script> $5" in header  # markup shown as text, not run
    assert MARKUP_DEVICE.split(" $")[0] in header
    assert browser.execute_script("return document.querySelectorAll('#summary-matrix b, main script').length") == 0
    rows = matrix.find_elements(By.CSS_SELECTOR, "tbody tr:not(.control)")
    (control,) = matrix.find_elements(By.CSS_SELECTOR, "tbody tr.control")
    assert control.find_element(By.TAG_NAME, "th").text.startswith("A/A control")  # the noise floor, under the verdicts
    assert [r.find_element(By.TAG_NAME, "th").text.split(".")[0] for r in rows] == [
        *("Obs 1", "Obs 2", "Obs 3", "Obs 4", "Whole models: the papers' headline claims")
    ]
    assert all(len(r.find_elements(By.CSS_SELECTOR, "td .badge")) == 2 for r in rows)

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.src.slice(0, 26)])"
    )
    assert len(images) > 10
    broken = [alt for alt, complete, width, _ in images if not complete or width == 0]
    assert not broken, f"broken images: {broken[:5]}"
    assert {src for *_, src in images} == {"data:image/svg+xml;base64,"}

    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors

    shot = Path(os.environ.get("OPBENCH_SCREENSHOT") or tmp_path / "summary.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", browser.find_element(By.ID, "summary"))
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
