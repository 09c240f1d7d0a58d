"""Sessions: `nox` runs lint and every test session; `nox -s main` runs the main job.

Each session installs what it needs itself, Debian's dataset-fashion-mnist included (as root).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = [
    "lint",
    "tests-core",
    "tests-torch",
    "tests-tf",
    "tests-keras",
    "tests-keras-torch",
    "tests-keras-jax",
    "tests-deploy",
    "tests-browser",
    "tests-sweeps",
    "tests-cluster",
    "tests-gpu",
    "tests-docs",
    "tests-parity",
]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent


def use_uv() -> str:
    """uv when it can be had: every session's packages come hardlinked from uv's one cache, so
    torch and TensorFlow are on disk once and installs take seconds after the first. Where uv is
    missing it is installed beside nox; where that fails (or FMNIST_NO_UV=1), virtualenv and pip,
    saying so. uv gets the sources pip is configured with (a local index, find-links folders, a
    constraints file: on these machines, torch's build on disk)."""
    if os.environ.get("FMNIST_NO_UV") == "1":
        return "virtualenv"
    if shutil.which("uv") is None and importlib.util.find_spec("uv") is None:
        print("nox: installing uv beside nox (one copy of each framework on disk)", flush=True)
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "uv"], check=False
        ).returncode
        if installed != 0:
            print("nox: uv could not be installed; using virtualenv and pip", flush=True)
            return "virtualenv"
    for key, value in pip_sources().items():
        os.environ.setdefault(key, value)
    return "uv"


def pip_sources() -> dict[str, str]:
    """pip's configured sources (``pip config list`` and ``PIP_*``) as uv's variables."""
    found: dict[str, list[str]] = {}
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        found.setdefault(key.split(".")[-1], []).extend(value.strip("'\"").split())
    for key in ("find-links", "extra-index-url", "index-url", "constraint"):
        env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if env:
            found.setdefault(key, []).extend(env.split())
    uv = {
        "find-links": ("UV_FIND_LINKS", ","),
        "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
        "index-url": ("UV_INDEX_URL", " "),
        "constraint": ("UV_CONSTRAINT", " "),
    }
    sources = {
        uv[key][0]: uv[key][1].join(dict.fromkeys(values))
        for key, values in found.items()
        if key in uv and values
    }
    if sources:  # as pip does: the best version from any source, not the first source's
        sources["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return sources


nox.options.default_venv_backend = use_uv()
# Bytecode, written once per environment into .nox/pycache (never beside the sources): uv
# installs none, and with PYTHONDONTWRITEBYTECODE set (as on these machines) every process
# compiled what it imported from source: TensorFlow's import took 10.5 s, 4 s from bytecode
# (torch 6.4 → 3.0 s, Ray Tune 7.5 → 1.8 s), and the tests start hundreds of processes.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = str(ROOT / ".nox" / "pycache")
DATA = Path("/usr/share/datasets/fashion-mnist")
PLUGINS = {
    "torch": "plugins/fmnist_torch",
    "tf": "plugins/fmnist_tf",
    "keras": "plugins/fmnist_keras",
    "onnx": "plugins/fmnist_onnx",
}


def ensure_data(session: nox.Session) -> None:
    """Install Debian's dataset-fashion-mnist when the real data is missing."""
    if (DATA / "t10k-labels-idx1-ubyte.gz").exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error(
            f"Fashion-MNIST missing in {DATA}: run `apt-get install dataset-fashion-mnist` as root"
        )
    session.run("apt-get", "update", "-q", external=True)
    session.run("apt-get", "install", "-y", "-q", "dataset-fashion-mnist", external=True)


def pytest(
    session: nox.Session, *paths: str, env: dict[str, str] | None = None, parallel: bool = False
) -> None:
    """pytest over ``paths``; ``parallel``: in two processes (pytest-xdist) where the machine has
    two cores or more. The conformance suites are hundreds of small single-threaded tests, so a
    second process uses the second core: on a 2-core AMD EPYC tests-tf took 407 → 332 s,
    tests-core 179 → 130, tests-keras 228 → 179. Sessions on torch stay serial (its steps use
    both cores already: tests-torch 250 s either way, Keras on torch 93 → 186 s), as do those
    that start clusters, servers or timed waits."""
    workers = ["-n", "2"] if parallel and (os.cpu_count() or 1) >= 2 else []
    session.run(
        "python",
        "-m",
        "pytest",
        *workers,
        *paths,
        *session.posargs,
        env=env,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lines ≤ 100, formatted) over everything; import-linter's contracts (pyproject.toml:
    the core's folders are layers, nothing imports the CLI, no framework in the core); mypy over
    the core, every plugin and a typed use of the public API, and --strict over the public
    modules (``STRICT``)."""
    session.install("ruff", "import-linter", "mypy", "-e", ".")
    # the plugins' code only, for the contract that they import nothing but the public API
    session.install("--no-deps", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    paths = [p for p in ("src", "plugins", "tests", "bench", "noxfile.py") if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")
    packages = [str(path / "src" / path.name) for path in map(Path, PLUGINS.values())]
    session.run("mypy", "src/fmnist_core", *packages, "tests/typing/public_api.py")
    # strict on what users import: the package's names, the registry, Trainer, the hooks
    session.run("mypy", "--strict", "--follow-imports=silent", *STRICT)


STRICT = [
    "src/fmnist_core/__init__.py",
    "src/fmnist_core/errors.py",
    "src/fmnist_core/hookspecs.py",
    "src/fmnist_core/labels.py",
    "src/fmnist_core/plugins.py",
    "src/fmnist_core/training/trainer.py",
]
"""The public modules mypy checks with --strict (issue 44); the rest is checked by default."""


@nox.session
def quick(session: nox.Session) -> None:
    """The inner loop, a few minutes once its environment exists: ruff, the core's tests (NumPy
    backend, data, CLI, hostile input, the estimator) and the torch backend's conformance suite
    (every layer type and recipe against NumPy), in one environment. `nox` runs everything."""
    ensure_data(session)
    session.install("ruff", "-e", ".[test,plots,sklearn]", "-e", PLUGINS["torch"])
    paths = [p for p in ("src", "plugins", "tests", "bench", "noxfile.py") if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    pytest(
        session,
        "tests/core",
        "tests/torch/test_torch_backend.py::TestTorchConformance",
        "-q",
        "-p",
        "no:cacheprovider",
    )


@nox.session(name="tests-core")
def tests_core(session: nox.Session) -> None:
    """The core with no framework installed: NumPy backend, data, CLI, pictures, conformance,
    the scikit-learn estimator."""
    ensure_data(session)
    session.install("-e", ".[test,plots,sklearn]")
    pytest(session, "tests/core", parallel=True)


@nox.session(name="tests-torch")
def tests_torch(session: nox.Session) -> None:
    """The PyTorch plugin: conformance, article weights, real-data acceptance."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", PLUGINS["torch"])
    pytest(session, "tests/torch")


@nox.session(name="tests-tf")
def tests_tf(session: nox.Session) -> None:
    """The low-level TensorFlow plugin: conformance, SavedModel import and export."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", PLUGINS["tf"])
    pytest(session, "tests/tf", parallel=True)


@nox.session(name="tests-keras")
def tests_keras(session: nox.Session) -> None:
    """The Keras plugin on Keras' TensorFlow backend (fmnist-keras[tensorflow]: fmnist-tf)."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", PLUGINS["tf"], "-e", f"{PLUGINS['keras']}[tensorflow]")
    pytest(session, "tests/keras", env={"KERAS_BACKEND": "tensorflow"}, parallel=True)


@nox.session(name="tests-keras-torch")
def tests_keras_torch(session: nox.Session) -> None:
    """The Keras plugin on Keras' torch backend (fmnist-keras[torch]), TensorFlow not installed."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", PLUGINS["torch"], "-e", f"{PLUGINS['keras']}[torch]")
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)",
    )
    pytest(session, "tests/keras", env={"KERAS_BACKEND": "torch"})


@nox.session(name="tests-keras-jax")
def tests_keras_jax(session: nox.Session) -> None:
    """The Keras plugin on Keras' JAX backend (fmnist-keras[jax]), TensorFlow not installed."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", f"{PLUGINS['keras']}[jax]")
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)",
    )
    pytest(session, "tests/keras", env={"KERAS_BACKEND": "jax"}, parallel=True)


@nox.session(name="tests-deploy")
def tests_deploy(session: nox.Session) -> None:
    """ONNX export, the onnxruntime backend and `fmnist serve`, with no training framework."""
    ensure_data(session)
    session.install("-e", ".[test,onnx,serve]", "-e", PLUGINS["onnx"], "httpx")
    pytest(session, "tests/onnx", "tests/serve")


ORT_WEB = (
    "onnxruntime-web",
    "1.31.1",
    "5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==",
)


def ort_web(session: nox.Session) -> Path:
    """onnxruntime-web's npm package (the .tgz `npm pack` writes), fetched once from the npm
    registry into .nox/ and checked against its published sha512, for `fmnist export --format
    web` (FMNIST_ORT_WEB); nothing is fetched while the tests run."""
    import base64
    import hashlib
    import urllib.request

    name, version, integrity = ORT_WEB
    path = ROOT / ".nox" / f"{name}-{version}.tgz"

    def intact() -> bool:
        digest = base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
        return digest == integrity

    if path.exists() and intact():
        return path
    registry = "https://registry.npmjs.org/"
    if shutil.which("npm"):
        configured = subprocess.run(
            ["npm", "config", "get", "registry"], capture_output=True, text=True
        ).stdout.strip()
        registry = configured if configured.startswith("http") else registry
    url = f"{registry.rstrip('/')}/{name}/-/{name}-{version}.tgz"
    session.log(f"fetching {url}")
    path.parent.mkdir(exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response:
        path.write_bytes(response.read())
    if not intact():
        path.unlink()
        session.error(f"{url} does not match its published sha512")
    return path


@nox.session(name="tests-browser")
def tests_browser(session: nox.Session) -> None:
    """The page of fmnist serve and the web export (onnxruntime-web, served by a static host
    on 127.0.0.1, every other address blocked) in a real headless browser: Debian's chromium
    and chromium-driver with Selenium (installed here as root; skipped, saying why, elsewhere)."""
    ensure_data(session)
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            session.skip(
                "needs Debian's chromium and chromium-driver: apt-get install them as root"
            )
        session.run("apt-get", "update", "-q", external=True)
        session.run("apt-get", "install", "-y", "-q", "chromium", "chromium-driver", external=True)
    session.install("-e", ".[test,serve]", "-e", PLUGINS["onnx"], "selenium", "httpx")
    pytest(session, "tests/browser", "-rs", env={"FMNIST_ORT_WEB": str(ort_web(session))})


@nox.session(name="tests-sweeps")
def tests_sweeps(session: nox.Session) -> None:
    """Ray Tune sweeps on 2 CPUs and the tracking callbacks (read back with TensorBoard's and
    MLflow's readers)."""
    ensure_data(session)
    session.install("-e", ".[test,tune,tensorboard,mlflow]", "tensorboard")
    pytest(session, "tests/sweeps")


@nox.session(name="tests-cluster")
def tests_cluster(session: nox.Session) -> None:
    """Outgrowing one machine, on loopback: a two-node Ray cluster (127.0.0.2, 127.0.0.3) with
    token authentication running sweeps, and torch and TensorFlow data-parallel across two
    launchers as two machines; every process a test starts, it stops."""
    ensure_data(session)
    session.install("-e", ".[test,tune]", "-e", PLUGINS["torch"], "-e", PLUGINS["tf"])
    pytest(session, "tests/cluster", "-s")


@nox.session(name="tests-gpu")
def tests_gpu(session: nox.Session) -> None:
    """CUDA vs CPU parity and the precision options; every test skips where torch sees no GPU."""
    ensure_data(session)
    session.install("-e", ".[test]", "-e", PLUGINS["torch"])
    pytest(session, "tests/gpu", "-rs")


@nox.session(name="tests-docs")
def tests_docs(session: nox.Session) -> None:
    """Every code block of README.md and docs/: Python blocks run, shell blocks' fmnist and nox
    commands parsed by the real parsers (every plugin installed, as the README assumes)."""
    ensure_data(session)
    session.install(
        "-e",
        ".[test,sklearn,plots]",
        *(arg for path in PLUGINS.values() for arg in ("-e", path)),
        "ruff",  # the ejected programs are checked with ruff's own defaults
    )
    pytest(session, "tests/docs", env={"KERAS_BACKEND": "tensorflow"})


@nox.session(name="tests-parity")
def tests_parity(session: nox.Session) -> None:
    """Every plugin installed: same numbers as the NumPy reference, weights portable."""
    ensure_data(session)
    session.install("-e", ".[test]", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    pytest(session, "tests/parity", env={"KERAS_BACKEND": "tensorflow"})


@nox.session
def bench(session: nox.Session) -> None:
    """Every backend against the article's programs, hand-written loops and the floor."""
    ensure_data(session)
    session.install("-e", ".", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def speedrun(session: nox.Session) -> None:
    """The compute floor (bench/floor.py: FLOPs per image, each layer type's rate, the GEMM
    peak), then each recipe's fixed schedule over 5 seeds on every training backend beside the
    plain-PyTorch cnn program, each fit against the floor (BENCHMARKS.md)."""
    ensure_data(session)
    session.install("-e", ".", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    session.run("python", "bench/floor.py")
    session.run("python", "bench/speedrun.py", *session.posargs)


@nox.session(name="bench-cnn")
def bench_cnn(session: nox.Session) -> None:
    """The cnn recipe on every backend against the same CNN by hand (torch.optim, Keras fit)."""
    ensure_data(session)
    session.install("-e", ".", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    session.run("python", "bench/cnn.py", *session.posargs)


@nox.session(name="bench-workers")
def bench_workers(session: nox.Session) -> None:
    """Data-parallel: steady epoch of 1 and 2 workers, mlp and cnn, torch and tf (BENCHMARKS.md)."""
    ensure_data(session)
    session.install("-e", ".", "-e", PLUGINS["torch"], "-e", PLUGINS["tf"])
    session.run("python", "bench/workers.py", *session.posargs)


@nox.session(name="bench-serve")
def bench_serve(session: nox.Session) -> None:
    """fmnist serve under load on 127.0.0.1: requests/s and latency of the onnx and torch
    backends and of the onnx-int8, torch-export and litert files served by their runtimes."""
    ensure_data(session)
    session.install(
        "-e", ".[serve,onnx]", *(arg for path in PLUGINS.values() for arg in ("-e", path)), "httpx"
    )
    session.run("python", "bench/serve.py", *session.posargs)


@nox.session(name="bench-exports")
def bench_exports(session: nox.Session) -> None:
    """Every export format of mlp, cnn and fast: size, single-image latency, batch throughput,
    gate scores, each run by its own runtime (BENCHMARKS.md)."""
    ensure_data(session)
    session.install("-e", ".", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    env = {"FMNIST_ORT_WEB": str(ort_web(session))}
    session.run("python", "bench/exports.py", *session.posargs, env=env)


@nox.session(name="bench-eject")
def bench_eject(session: nox.Session) -> None:
    """Every recipe's ejected program against fmnist, step by step, on every framework."""
    ensure_data(session)
    session.install("-e", ".", *(arg for path in PLUGINS.values() for arg in ("-e", path)))
    session.run("python", "bench/eject.py", *session.posargs, env={"KERAS_BACKEND": "tensorflow"})


@nox.session
def build(session: nox.Session) -> None:
    """Wheels of fmnist-core and every plugin into dist/, quietly (the build's own output is
    shown only if it fails); a package whose files have not changed since its wheel was built
    is not built again."""
    import hashlib

    dist = ROOT / "dist"
    dist.mkdir(exist_ok=True)
    session.install("build", silent=True)
    for folder in [".", *PLUGINS.values()]:
        if not (ROOT / folder / "pyproject.toml").exists():
            continue
        files = sorted(
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
            and not any(
                part in ("__pycache__", "build", "dist") or part.endswith(".egg-info")
                for part in p.relative_to(ROOT).parts
            )
            and (
                folder != "."
                or p.is_relative_to(ROOT / "src")
                or p in (ROOT / "pyproject.toml", ROOT / "README.md")
            )
        )
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        stamp = dist / f".{Path(folder).name or 'core'}.built"
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            continue
        name = "fmnist_core" if folder == "." else Path(folder).name
        for old in dist.glob(f"{name}-*.whl"):
            old.unlink()
        session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), folder, silent=True)
        stamp.write_text(digest.hexdigest())


@nox.session
def main(session: nox.Session) -> None:
    """The main job: install from the built wheels, train on the real data, evaluate, save,
    predict."""
    ensure_data(session)
    build(session)
    extra = session.posargs[0] if session.posargs else "torch"
    if extra not in ("torch", "tf", "keras", "all", "numpy"):
        session.error(f"nox -s main -- {extra}: pick one of torch, tf, keras, all or numpy")
    spec = "fmnist-core[plots]" if extra == "numpy" else f"fmnist-core[{extra},plots]"
    session.install("--find-links", str(ROOT / "dist"), spec)
    run = ROOT / "runs" / "main"
    session.run("fmnist", "backends")
    session.run("fmnist", "train", "--out", str(run))
    # images the job writes itself from the test set: a clone needs nothing beside it
    session.run("fmnist", "sample", str(run / "samples"), "--count", "10")
    session.run(
        "fmnist", "predict", "--weights", str(run / "weights.safetensors"), str(run / "samples")
    )
    written = sorted(p.name for p in run.iterdir())
    session.log(
        f"the main job wrote {run.relative_to(ROOT)}/: {', '.join(written)} (README.md is the "
        f"model card; try `fmnist evaluate {run.relative_to(ROOT)}/weights.safetensors` or "
        f"`fmnist serve {run.relative_to(ROOT)}/weights.safetensors`)"
    )
