"""The page of ``wgan experiment all`` in a real browser: headless Chromium (Debian's
``chromium`` and ``chromium-driver``, which ``.ci/run`` installs) through Selenium. Every figure
decodes and has a non-zero rendered size, the verdict table is there, and the console shows no
errors. A screenshot is kept beside the page (``screenshot.png`` under the test's temporary
folder). Without Chromium, its driver or Selenium the test skips and says which is missing; the
:mod:`html.parser` checks of ``test_report_page.py`` run everywhere."""

import shutil

import pytest

from wgan.experiments import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

MISSING = [
    what
    for what, present in (
        ("chromium", CHROMIUM),
        ("chromedriver", DRIVER),
        ("selenium (pip install selenium)", webdriver),
    )
    if not present
]


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.skipif(bool(MISSING), reason=f"no browser to test in: missing {', '.join(MISSING)}")
def test_report_page_renders_in_chromium(tmp_path, browser, tiny_mode_collapse):
    experiments = {"mode-collapse": tiny_mode_collapse}
    rep = report.run_all(tmp_path, experiments=experiments)
    assert rep.entries[0].status == "ok", rep.entries[0].error
    browser.get(rep.index.as_uri())
    # Each image: decoded (img.decode() resolves), laid out with a size, and whole: drawn on a
    # canvas at its natural size, no pixel is transparent (matplotlib's figures are opaque, and
    # the part of a truncated PNG that could not be decoded stays transparent).
    images = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.images).map(async (img) => {
            let decoded = true;
            try { await img.decode(); } catch (e) { decoded = false; }
            const box = img.getBoundingClientRect();
            let transparent = -1;
            if (decoded && img.naturalWidth > 0) {
                const c = document.createElement("canvas");
                c.width = img.naturalWidth; c.height = img.naturalHeight;
                const ctx = c.getContext("2d");
                ctx.drawImage(img, 0, 0);
                const a = ctx.getImageData(0, 0, c.width, c.height).data;
                transparent = 0;
                for (let i = 3; i < a.length; i += 4) if (a[i] === 0) transparent++;
            }
            return [decoded, img.naturalWidth, img.naturalHeight, box.width, box.height,
                    transparent];
        })).then(done);
        """
    )
    assert len(images) == len(rep.entries[0].figures) >= 1
    for decoded, natural_w, natural_h, shown_w, shown_h, transparent in images:
        assert decoded and natural_w > 0 and natural_h > 0
        assert shown_w > 0 and shown_h > 0
        assert transparent == 0, f"{transparent} of {natural_w * natural_h} pixels not decoded"
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table tr')).map(r => r.innerText);"
    )
    for verdict in rep.entries[0].verdicts:
        assert any(verdict.claim in row for row in rows), (verdict.claim, rows)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    browser.save_screenshot(str(tmp_path / "screenshot.png"))
    assert (tmp_path / "screenshot.png").stat().st_size > 0
