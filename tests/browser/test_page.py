"""The page of `fmnist serve` in a real headless browser (Debian's chromium, chromium-driver and
Selenium; `nox -s tests-browser` installs them): upload a test image and read the label the page
shows, against `fmnist predict`; a file that is not an image shows the server's one-line message;
a drawing is classified. `FMNIST_SCREENSHOT=path.png` keeps a screenshot (the README's)."""

import os
import shutil
import socket
import threading
import time

import pytest

from fmnist_core import Trainer, load_dataset

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="Selenium is installed by nox -s tests-browser"
)
if not shutil.which("chromedriver"):
    pytest.skip(
        "needs Debian's chromium-driver (nox -s tests-browser installs it, as root)",
        allow_module_level=True,
    )

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    from fmnist_core.apps.serve import ServeSettings, create_app, uvicorn_options
    from fmnist_core.data.images import save_samples
    from tests.conftest import REAL_DATA

    real = load_dataset(REAL_DATA)
    folder = tmp_path_factory.mktemp("page")
    trainer = Trainer(backend="numpy", data=real, verbose=0, epochs=2)
    trainer.fit()
    trainer.evaluate()
    trainer.save(folder / "w.safetensors")
    loaded = Trainer.load(folder / "w.safetensors", data=real, verbose=0)
    samples = [path for path, _, _ in save_samples(real.test, folder / "samples", count=5)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ServeSettings()
    server = uvicorn.Server(
        uvicorn.Config(create_app(loaded, settings), **uvicorn_options(settings, "127.0.0.1", port))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", loaded, samples, folder
    server.should_exit = True
    thread.join(10)


def shown(browser, element_id, timeout=20):
    WebDriverWait(browser, timeout).until(lambda d: d.find_element(By.ID, element_id).text.strip())
    return browser.find_element(By.ID, element_id).text.strip()


def test_upload_shows_the_label_fmnist_predict_gives(served, browser):
    url, trainer, samples, _ = served
    browser.get(url)
    assert "model mlp on numpy" in shown(browser, "model")
    for sample in samples[:3]:
        browser.execute_script("document.getElementById('label').textContent = ''")
        browser.find_element(By.ID, "file").send_keys(str(sample))
        assert shown(browser, "label") == trainer.predict(sample)[0]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#bars li")) == 5
    if os.environ.get("FMNIST_SCREENSHOT"):
        browser.save_screenshot(os.environ["FMNIST_SCREENSHOT"])


PREVIEW_PIXELS = """
const img = document.getElementById('preview');
if (img.hidden || !img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const pen = canvas.getContext('2d');
pen.drawImage(img, 0, 0);
const rgba = pen.getImageData(0, 0, canvas.width, canvas.height).data;
return [canvas.width, canvas.height, Array.from(rgba).filter((_, i) => i % 4 === 0)];
"""


def test_the_page_shows_what_the_model_sees(served, browser):
    """A dark garment on white (a photo's look): the page shows the 28×28 input fmnist makes
    of it (inverted, scaled, centred), pixel for pixel, not the file chosen."""
    import numpy as np
    from PIL import Image

    from fmnist_core.data.images import load_image

    url, trainer, samples, folder = served
    photo = folder / "dark-on-white.png"
    original = np.asarray(Image.open(samples[0]).convert("L"))
    Image.fromarray(255 - original).resize((84, 84)).save(photo)
    browser.get(url)
    shown(browser, "model")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    assert shown(browser, "label") == trainer.predict(photo)[0]
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(PREVIEW_PIXELS))
    width, height, pixels = browser.execute_script(PREVIEW_PIXELS)
    seen = np.array(pixels, np.uint8).reshape(height, width)
    assert (width, height) == (28, 28)
    np.testing.assert_array_equal(seen, load_image(photo))
    assert not np.array_equal(seen, np.asarray(Image.open(photo).convert("L").resize((28, 28))))


def test_a_file_that_is_not_an_image_shows_the_servers_message(served, browser):
    url, _, _, folder = served
    note = folder / "note.png"
    note.write_text("this is not a picture")
    browser.get(url)
    shown(browser, "model")
    browser.find_element(By.ID, "file").send_keys(str(note))
    message = shown(browser, "error")
    assert "note.png" in message and "\n" not in message
    assert browser.find_element(By.ID, "label").text == ""
    assert not browser.find_element(By.ID, "preview").is_displayed()  # no broken-image icon


def test_a_drawing_is_classified(served, browser):
    url, _, _, _ = served
    browser.get(url)
    shown(browser, "model")
    canvas = browser.find_element(By.ID, "canvas")
    ActionChains(browser).move_to_element_with_offset(
        canvas, -60, -80
    ).click_and_hold().move_by_offset(0, 160).move_by_offset(120, 0).release().perform()
    browser.find_element(By.ID, "predict-drawing").click()
    assert shown(browser, "label")  # one of the ten classes
    assert shown(browser, "label") in [
        li.text.split("\n")[0] for li in browser.find_elements(By.CSS_SELECTOR, "#bars li")
    ]
