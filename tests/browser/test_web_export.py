"""`fmnist export --format web`: the folder's page classifies test images in headless Chromium
with onnxruntime-web, as fmnist does, served by a plain static host on 127.0.0.1 with every other
address unreachable (tests/browser/conftest.py); nothing is fetched from anywhere else."""

import functools
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import load_dataset
from fmnist_core.testing.exports import MODELS, trained_briefly

pytest.importorskip("onnxruntime", reason="the web export needs fmnist-onnx (onnxruntime)")
if not os.environ.get("FMNIST_ORT_WEB") or not Path(os.environ["FMNIST_ORT_WEB"]).exists():
    pytest.skip(
        "needs onnxruntime-web's package in $FMNIST_ORT_WEB (nox -s tests-browser fetches it)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

COUNT = 20


@pytest.fixture(scope="module", params=MODELS)
def exported(tmp_path_factory, request):
    from fmnist_core.data.images import save_samples
    from tests.conftest import REAL_DATA

    real = load_dataset(REAL_DATA)
    folder = tmp_path_factory.mktemp("web")
    trainer = trained_briefly(request.param, "numpy", real)
    result = trainer.export(folder / "web", format="web")
    samples = [path for path, _, _ in save_samples(real.test, folder / "samples", count=COUNT)]

    class Quiet(SimpleHTTPRequestHandler):
        extensions_map = {
            **SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".wasm": "application/wasm",
        }

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(result.path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", trainer, samples, result
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_the_folder_holds_the_page_its_runtime_and_the_gated_model(exported):
    _, _, _, result = exported
    names = {p.name for p in result.path.iterdir()}
    assert {"index.html", "web.js", "page.css", "model.onnx", "model.js"} <= names
    assert "ort-wasm-simd-threaded.wasm" in names
    assert result.gate.passed and result.gate.images == 10_000
    script = (result.path / "model.js").read_text()
    recorded = json.loads(script.split("=", 1)[1].rstrip(";\n"))
    assert json.loads(recorded["fmnist_gate"])["agreement"] == result.gate.agreement


def test_the_page_classifies_test_images_as_fmnist_does(exported, browser):
    url, trainer, samples, _ = exported
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda d: (
            d.execute_script("return document.body.dataset.ready === 'true'")
            or d.find_element(By.ID, "model").text.startswith("the model could not")
        )
    )
    assert (
        f"model {trainer.model.name} in this browser" in browser.find_element(By.ID, "model").text
    )
    from fmnist_core import load_image

    images = np.stack([load_image(sample) for sample in samples])
    expected = trainer.logits(images, tta=False)
    probabilities = np.exp(expected - expected.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    for sample, wanted in zip(samples, probabilities, strict=True):
        browser.execute_script("document.getElementById('bars').dataset.probabilities = ''")
        browser.find_element(By.ID, "file").send_keys(str(sample))
        WebDriverWait(browser, 20).until(
            lambda d: (
                d.find_element(By.ID, "bars").get_attribute("data-probabilities")
                or not d.find_element(By.ID, "error").get_attribute("hidden")
            )
        )
        shown = browser.find_element(By.ID, "bars").get_attribute("data-probabilities")
        assert shown, browser.find_element(By.ID, "error").text
        got = np.array(json.loads(shown))
        assert got.argmax() == wanted.argmax(), sample
        assert np.abs(got - wanted).max() < 1e-4, sample
    assert browser.find_element(By.ID, "label").text == trainer.predict(samples[-1:])[0]
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert fetched and all(name.startswith(url) for name in fetched), fetched


def test_fmnist_reads_the_web_folder_back(exported, tmp_path):
    """fmnist evaluate and predict open the web folder (by its marker) with onnxruntime: the
    gate's accuracy, the source's labels; another export onto it replaces it, a folder of the
    user's files is refused."""
    from fmnist_core import StorageError
    from fmnist_core.testing.exports import READ_BACK_BY_COMMANDS, read_back

    _, trainer, _, result = exported
    assert (result.path / ".fmnist-written").is_file()
    read_back(trainer, result, tmp_path, in_process=trainer.model.name != READ_BACK_BY_COMMANDS)
    if trainer.model.name != READ_BACK_BY_COMMANDS:
        return  # the replacement and refusal below are the same for every model
    again = trainer.export(result.path, format="web")  # its own earlier output: replaced
    assert again.path == result.path and (result.path / "index.html").is_file()
    theirs = tmp_path / "site"
    theirs.mkdir()
    (theirs / "index.html").write_text("mine")
    with pytest.raises(StorageError, match="did not write"):
        trainer.export(theirs, format="web")
    assert (theirs / "index.html").read_text() == "mine"
