"""`fmnist serve` against a real server on 127.0.0.1: answers, bad input, concurrency, memory."""

import base64
import contextlib
import resource
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from fmnist_core import Trainer, load_dataset


@pytest.fixture(scope="module")
def real():
    from tests.conftest import REAL_DATA

    return load_dataset(REAL_DATA)


@pytest.fixture(scope="module")
def weights(real, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    trainer = Trainer(backend="numpy", data=real, verbose=0, epochs=2)
    trainer.fit()
    trainer.evaluate()
    trainer.save(folder / "w.safetensors")
    trainer.export(folder / "w.onnx")
    return folder


@pytest.fixture(scope="module")
def samples(real, tmp_path_factory):
    from fmnist_core.data.images import save_samples

    folder = tmp_path_factory.mktemp("samples")
    return [path for path, _, _ in save_samples(real.test, folder, count=200)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(trainer, **settings):
    import uvicorn

    from fmnist_core.apps.serve import ServeSettings, create_app, uvicorn_options

    port = free_port()
    settings = ServeSettings(**settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(trainer, settings), **uvicorn_options(settings, "127.0.0.1", port)
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module", params=["safetensors", "onnx"])
def server(request, weights, real):
    trainer = Trainer.load(weights / f"w.{request.param}", data=real, verbose=0)
    with running(trainer, max_files=250, max_bytes=200_000, max_pixels=1_000_000) as url:
        yield url, trainer


def test_health_metadata_docs(server):
    url, trainer = server
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    meta = httpx.get(f"{url}/metadata").json()
    assert (
        meta["model"] == "mlp"
        and meta["backend"] == trainer.backend.name
        and meta["parameters"] == 15910
    )
    assert 0.8 < meta["test_accuracy"] < 0.9 and meta["fmnist_version"]
    assert meta["settings"]["max_pixels"] == 1_000_000  # the limit in force, never null
    from fmnist_core.apps.serve import ServeSettings

    assert ServeSettings().max_pixels == 40_000_000
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "POST /predict" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing from elsewhere
    api = httpx.get(f"{url}/openapi.json").json()["paths"]["/predict"]["post"]
    body = api["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    answer = api["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["predictions"]["items"]["required"] == [
        "name",
        "label",
        "index",
        "probabilities",
    ]


def test_sample_request_in_one_request_and_in_200(server, samples):
    url, trainer = server
    expected = trainer.predict(samples)
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in samples]
    answer = httpx.post(f"{url}/predict", files=files, timeout=60).json()["predictions"]
    assert [a["label"] for a in answer] == expected
    assert all(abs(sum(a["probabilities"]) - 1) < 1e-5 for a in answer)

    def one(path):
        body = {"images": [base64.b64encode(path.read_bytes()).decode()]}
        return httpx.post(f"{url}/predict", json=body, timeout=60).json()["predictions"][0]["label"]

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(one, samples)) == expected


@pytest.mark.parametrize(
    "make, status, message",
    [
        (
            lambda p: {"files": ("x.png", b"not an image")},
            400,
            "x.png is not an image Pillow can read",
        ),
        (lambda p: {"files": ("e.png", b"")}, 400, "e.png is an empty file"),
        (
            lambda p: {"files": ("t.png", p.read_bytes()[:60])},
            400,
            "t.png is a damaged or truncated image",
        ),
        (
            lambda p: {"files": ("big.png", b"\x89PNG" + b"0" * 300_000)},
            413,
            "over the limit of 200,000",
        ),
    ],
)
def test_bad_files(server, samples, make, status, message):
    url, _ = server
    out = httpx.post(f"{url}/predict", files=make(samples[0]))
    assert out.status_code == status and message in out.json()["detail"]
    assert "\n" not in out.json()["detail"] and "Traceback" not in out.text
    assert httpx.get(f"{url}/health").status_code == 200  # still serving


def test_bad_requests(server, samples):
    url, _ = server
    too_many = [("files", (f"{i}.png", samples[0].read_bytes())) for i in range(251)]
    cases = [
        (
            httpx.post(f"{url}/predict", files=too_many),
            413,
            "251 images in one request, over the limit of 250",
        ),
        (
            httpx.post(
                f"{url}/predict", content=b"{nope", headers={"content-type": "application/json"}
            ),
            400,
            "not valid JSON",
        ),
        (httpx.post(f"{url}/predict", json={"pictures": []}), 400, "JSON must be"),
        (
            httpx.post(f"{url}/predict", json={"images": ["@@@"]}),
            400,
            "images[0] is not valid base64",
        ),
        (httpx.post(f"{url}/predict", json={"images": []}), 400, "no images in the request"),
        (
            httpx.post(f"{url}/predict", content=b"x", headers={"content-type": "text/plain"}),
            415,
            "not accepted",
        ),
    ]
    for response, status, message in cases:
        assert response.status_code == status and message in response.json()["detail"], (
            response.text
        )


def test_bomb_is_refused(server, tmp_path):
    from PIL import Image

    Image.new("1", (5000, 5000)).save(tmp_path / "bomb.png", optimize=True)
    url, _ = server
    out = httpx.post(
        f"{url}/predict", files={"files": ("bomb.png", (tmp_path / "bomb.png").read_bytes())}
    )
    assert out.status_code == 400 and "over the limit of 1,000,000" in out.json()["detail"]


def test_model_failure_is_a_short_500(weights, real, samples):
    trainer = Trainer.load(weights / "w.safetensors", data=real, verbose=0)
    with running(trainer) as url:
        trainer.engine.logits = lambda images: (_ for _ in ()).throw(RuntimeError("boom"))
        out = httpx.post(f"{url}/predict", files={"files": ("a.png", samples[0].read_bytes())})
        assert out.status_code == 500 and out.json() == {"detail": "the model failed: RuntimeError"}


def test_test_time_augmentation_is_a_serve_option(weights, real, samples):
    from fmnist_core.training.metrics import softmax

    trainer = Trainer.load(weights / "w.safetensors", data=real, verbose=0)
    images = real.test.images[:3]
    files = [("files", (f"{i}.png", samples[i].read_bytes())) for i in range(3)]
    for tta in (True, False):
        with running(trainer, tta=tta) as url:
            assert httpx.get(f"{url}/metadata").json()["settings"]["tta"] is tta
            got = httpx.post(f"{url}/predict", files=files).json()["predictions"]
        expected = softmax(trainer.logits(images, tta=tta))
        served = np.array([p["probabilities"] for p in got])
        np.testing.assert_allclose(served, expected, atol=1e-5)
    assert not np.allclose(trainer.logits(images, tta=True), trainer.logits(images, tta=False))


def test_load_small_concurrent_clients_micro_batched(weights, real, samples):
    """8 clients × 25 requests on 127.0.0.1: all answered right, batched, memory flat."""
    trainer = Trainer.load(weights / "w.onnx", data=real, verbose=0)
    expected = dict(zip(samples, trainer.predict(samples), strict=True))
    with running(trainer, wait_ms=10) as url:
        client = httpx.Client(timeout=30)

        def client_run(offset):
            wrong = 0
            for i in range(25):
                path = samples[(offset * 25 + i) % len(samples)]
                answer = client.post(f"{url}/predict", files={"f": (path.name, path.read_bytes())})
                wrong += (
                    answer.status_code != 200
                    or answer.json()["predictions"][0]["label"] != expected[path]
                )
            return wrong

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(client_run, range(8))) == 0  # warm-up round
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(client_run, range(8))) == 0
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert grown < 50, f"peak RSS grew {grown:.1f} MB over 200 requests"


def test_cli_serve_prints_its_url_and_serves(weights, samples):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "serve",
            str(weights / "w.onnx"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            time.sleep(0.2)
        out = httpx.post(
            f"http://127.0.0.1:{port}/predict", files={"f": ("a.png", samples[0].read_bytes())}
        )
        assert (
            out.json()["predictions"][0]["label"]
            == Trainer.load(weights / "w.onnx").predict(samples[0])[0]
        )
    finally:
        process.terminate()
        process.wait(10)


def test_cli_serve_bad_weights_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "serve", str(tmp_path / "missing.onnx")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "does not exist" in out.stderr


# -- the server under abuse (issue 23, items 6-10) ------------------------------------------------


def rss_mb() -> float:
    """This process's resident memory now (the servers of these tests run in this process)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.fixture(scope="module")
def mlp(weights, real):
    return Trainer.load(weights / "w.safetensors", data=real, verbose=0)


def big_png(tmp_path, side=6300) -> bytes:
    from PIL import Image

    path = tmp_path / f"big{side}.png"
    if not path.exists():
        Image.new("L", (side, side)).save(path, optimize=True)
    return path.read_bytes()


def test_decoding_is_off_the_event_loop_and_pixels_are_capped_per_request(mlp, tmp_path):
    picture = big_png(tmp_path)  # ~40 M pixels, a few kB: under the per-image limit
    with running(mlp) as url:
        eight = [("files", (f"{i}.png", picture)) for i in range(8)]
        started = time.time()
        out = httpx.post(f"{url}/predict", files=eight, timeout=60)
        assert (
            out.status_code == 413
            and "over the limit of 64,000,000 per request" in out.json()["detail"]
        )
        assert time.time() - started < 5  # from the headers, nothing decoded
        with ThreadPoolExecutor(1) as pool:  # one 40 M pixel image decodes while /health answers
            slow = pool.submit(
                httpx.post, f"{url}/predict", files={"files": ("a.png", picture)}, timeout=120
            )
            time.sleep(0.3)
            waits = []
            for _ in range(5):
                began = time.time()
                assert httpx.get(f"{url}/health", timeout=10).status_code == 200
                waits.append(time.time() - began)
            assert slow.result().status_code == 200
        print(f"/health while a 6300x6300 image decodes: {max(waits) * 1000:.0f} ms at most")
        assert max(waits) < 1.0


def test_the_body_limit_is_enforced_while_the_body_arrives(mlp):
    with running(mlp, max_request_bytes=2_000_000) as url:
        before = rss_mb()
        declared = httpx.post(
            f"{url}/predict", content=b"x" * 3_000_000, headers={"content-type": "application/json"}
        )
        assert (
            declared.status_code == 413
            and "over the limit of 2,000,000 bytes" in declared.json()["detail"]
        )

        def chunks():  # no content-length: 300 MB in 1 MB chunks, refused after the first 2 MB
            for _ in range(300):
                yield b" " * 1_000_000

        streamed = httpx.post(
            f"{url}/predict",
            content=chunks(),
            timeout=60,
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        grown = rss_mb() - before
        print(f"a 300 MB streamed body: 413, the process grew {grown:.0f} MB")
        assert grown < 100
        assert httpx.get(f"{url}/health").status_code == 200


def test_deep_json_and_many_fields_are_the_clients_error(mlp, samples):
    with running(mlp) as url:
        deep = httpx.post(
            f"{url}/predict",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
        )
        assert deep.status_code == 400 and "nests too deeply" in deep.json()["detail"]
        fields = {f"f{i}": "x" for i in range(5000)}
        many = httpx.post(
            f"{url}/predict", data=fields, files={"files": ("a.png", samples[0].read_bytes())}
        )
        assert many.status_code == 413
        assert "the limits are 256 files and 272 fields per request" in many.json()["detail"]


def test_slow_clients_are_closed_and_good_ones_answered(mlp, samples):
    with running(mlp, header_timeout=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            slow.append(s)
        try:
            good = httpx.post(f"{url}/predict", files={"files": ("a.png", samples[0].read_bytes())})
            assert good.status_code == 200
            time.sleep(2.5)
            closed = 0
            for s in slow:
                try:
                    closed += s.recv(1) == b""  # the server closed it
                except OSError:
                    closed += 1
            assert closed == len(slow)
        finally:
            for s in slow:
                s.close()


def raw_request(port: int, data: bytes, timeout: float = 15) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_head_security_headers_and_the_page_policy(mlp):
    with running(mlp) as url:
        head = httpx.head(f"{url}/health")
        assert head.status_code == 200 and head.content == b""
        assert httpx.head(f"{url}/").status_code == 200
        for path in ("/health", "/", "/page.js"):
            headers = httpx.get(f"{url}{path}").headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in httpx.get(f"{url}/").headers["content-security-policy"]


def test_a_foreign_host_header_is_refused(mlp):
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 sends Host: evil.example;
    a server bound to loopback answers only loopback names (the CLI's default)."""
    from fmnist_core.apps.serve import default_allowed_hosts

    with running(mlp, allowed_hosts=default_allowed_hosts("127.0.0.1")) as url:
        port = int(url.rsplit(":", 1)[1])
        assert httpx.get(f"{url}/health").status_code == 200
        for host in (f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
            request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            answer = raw_request(port, request.encode())
            assert answer.startswith(b"HTTP/1.1 200"), (host, answer[:200])
        refused = httpx.get(f"{url}/health", headers={"Host": f"evil.example:{port}"})
        assert refused.status_code == 400 and "evil.example" in refused.json()["detail"]
        assert refused.headers["x-content-type-options"] == "nosniff"
    assert default_allowed_hosts("0.0.0.0") is None and default_allowed_hosts("10.1.2.3") == (
        "10.1.2.3",
    )


def test_a_stalled_body_is_a_408_and_frees_its_place(mlp, samples):
    with running(mlp, body_timeout=1.0, max_connections=2) as url:
        port = int(url.rsplit(":", 1)[1])
        head = (
            "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            "boundary=x\r\nContent-Length: 100000\r\n\r\n"
        )
        answers = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(raw_request(port, head.encode() + b"--x\r\n"))
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(answers) == 2 and all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
        good = httpx.post(f"{url}/predict", files={"files": ("a.png", samples[0].read_bytes())})
        assert good.status_code == 200


def test_connections_still_sending_headers_take_no_place_of_requests(mlp, samples):
    """300 connections trickling their headers (within the header timeout) beside a limit of 8
    requests at once: the good requests meanwhile are all answered, none 503."""
    with running(mlp, header_timeout=30.0, max_connections=8) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        try:
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127")  # and then nothing, for now
                slow.append(s)
            with ThreadPoolExecutor(4) as pool:
                codes = list(
                    pool.map(
                        lambda _: (
                            httpx.post(
                                f"{url}/predict", files={"f": ("a.png", samples[0].read_bytes())}
                            ).status_code
                        ),
                        range(40),
                    )
                )
            assert codes == [200] * 40, codes
        finally:
            for s in slow:
                s.close()


def test_predict_can_return_what_the_model_was_given(server, samples):
    import io

    from PIL import Image

    from fmnist_core.data.images import load_image

    url, _ = server
    files = [("files", (p.name, p.read_bytes())) for p in samples[:3]]
    plain = httpx.post(f"{url}/predict", files=files).json()["predictions"]
    shown = httpx.post(f"{url}/predict?inputs=true", files=files).json()["predictions"]
    assert all("input" not in p for p in plain)
    for prediction, path in zip(shown, samples[:3], strict=True):
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(prediction["input"]))))
        np.testing.assert_array_equal(image, load_image(path))


def test_docs_open_without_warnings_and_describe_health_and_metadata(weights, real):
    import warnings

    from fmnist_core.apps.serve import ServeSettings, create_app, default_allowed_hosts

    trainer = Trainer.load(weights / "w.safetensors", data=real, verbose=0)
    app = create_app(trainer, ServeSettings())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI's "Duplicate Operation ID" fails the test
        paths = app.openapi()["paths"]
    for path in ("/health", "/metadata"):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("type") == "object", (path, schema)
        assert "head" not in paths[path]
    hosts = default_allowed_hosts("127.0.0.1")
    assert len(hosts) == len(set(hosts)) and "127.0.0.1" in hosts
    with running(trainer) as url:
        assert httpx.head(f"{url}/health").status_code == 200


def test_each_prediction_names_its_image(server, samples):
    url, _ = server
    files = [("file", ("shirt.png", samples[0].read_bytes(), "image/png")),
             ("file", ("boot.png", samples[1].read_bytes(), "image/png"))]  # fmt: skip
    got = httpx.post(f"{url}/predict", files=files).json()["predictions"]
    assert [p["name"] for p in got] == ["shirt.png", "boot.png"]
    body = {"images": [base64.b64encode(samples[0].read_bytes()).decode()] * 2}
    got = httpx.post(f"{url}/predict", json=body).json()["predictions"]
    assert [p["name"] for p in got] == ["images[0]", "images[1]"]
