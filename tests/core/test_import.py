import subprocess
import sys

HEAVY = ("torch", "tensorflow", "keras", "jax", "matplotlib")


def test_import_and_listing_load_no_framework():
    code = ("import sys, fmnist_core; fmnist_core.backends(); fmnist_core.weight_formats(); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importtime_shows_no_framework():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import fmnist_core"],
                         capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY)
