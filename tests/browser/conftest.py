"""The headless browser the page tests share: Debian's chromium through chromedriver, with every
address but loopback unreachable (a dead proxy for all but 127.0.0.1), so a page that fetched
anything from elsewhere would fail."""

import shutil

import pytest


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="Selenium is installed by nox -s tests-browser"
    )
    if not shutil.which("chromedriver"):
        pytest.skip("needs Debian's chromium-driver (nox -s tests-browser installs it, as root)")
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,760",
        # loopback goes direct (Chrome's implicit bypass); everything else to a closed port
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(flag)
    binary = shutil.which("chromium")
    if binary:
        options.binary_location = binary
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
