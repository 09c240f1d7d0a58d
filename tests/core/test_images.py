import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist_core.data.images import collect_image_paths, load_image, load_images
from fmnist_core.errors import ImageError


def garment(size=28):
    array = np.zeros((size, size), np.uint8)
    array[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 200
    return array


def test_dataset_form_passes_through(tmp_path):
    Image.fromarray(garment()).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), garment())


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA", "I;16", "I", "F", "1"])
def test_modes_become_gray_light_on_black(tmp_path, mode):
    base = Image.fromarray(garment())
    if mode == "I;16":
        image = Image.fromarray(garment().astype(np.uint16) * 257)
    elif mode == "F":
        image = Image.fromarray(garment().astype(np.float32) / 255)
    else:
        image = base.convert(mode)
    path = tmp_path / ("a.tiff" if mode in ("F", "I") else "a.png")
    image.save(path)
    out = load_image(path)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out[0, 0] == 0 and out[14, 14] > 150


def test_transparent_background_becomes_black(tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255  # white but fully transparent
    rgba[7:21, 9:19] = (200, 200, 200, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out[0, 0] == 0 and out[14, 14] == 200


def test_light_background_is_inverted(tmp_path):
    Image.fromarray(255 - garment()).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out, garment())


def test_other_size_is_fitted(tmp_path):
    Image.fromarray(garment(112)[:, :80]).convert("RGB").save(tmp_path / "a.jpg")
    out = load_image(tmp_path / "a.jpg")
    assert out.shape == (28, 28) and out[:, :2].max() < 10 and out[14, 17] > 100


@pytest.mark.parametrize(
    "content, message", [(b"not an image", "not an image"), (b"", "is an empty file")]
)
def test_unreadable_files_named(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as info:
        load_image(tmp_path / "b.png")
    assert "b.png" in str(info.value)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="holds no images"):
        collect_image_paths([tmp_path])


def test_folder_sorted(tmp_path):
    for name in ("b.png", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in collect_image_paths([tmp_path])] == ["a.png", "b.png"]


def test_seed_artifacts_are_test_images(artifacts, real_data_dir):
    from fmnist_core.data import load_dataset

    test = load_dataset(real_data_dir).test
    paths, images = load_images([artifacts / "sample-request"])
    assert len(paths) == 200
    np.testing.assert_array_equal(images, test.images[:200])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_image_loader(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("img") / "f.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + payload)
    try:
        out = load_image(path)
        assert out.shape == (28, 28)
    except ImageError:
        pass


def _big_png(path, width, height):
    """A PNG declaring width×height pixels that is tiny on disk (one colour compresses well)."""
    from PIL import Image

    Image.new("1", (width, height)).save(path, optimize=True)
    return path


def test_decompression_bomb_is_an_image_error(tmp_path):
    from PIL import Image

    bomb = _big_png(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 1_000_000 and 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(
        ImageError, match=r"bomb.png declares 400,000,000 pixels, over the limit of 40,000,000"
    ):
        load_image(bomb)


def test_just_over_the_limit(tmp_path):
    image = _big_png(tmp_path / "wide.png", 101, 100)
    with pytest.raises(ImageError, match="over the limit of 10,000"):
        load_image(image, max_pixels=10_000)
    assert load_image(image, max_pixels=10_100).shape == (28, 28)


def test_bomb_from_the_api_and_the_cli(tmp_path):
    import subprocess
    import sys

    from fmnist_core import Trainer
    from fmnist_core.testing import synthetic_dataset

    bomb = _big_png(tmp_path / "bomb.png", 20000, 20000)
    trainer = Trainer(backend="numpy", data=synthetic_dataset(), verbose=0)
    trainer.save(tmp_path / "w.safetensors")
    with pytest.raises(ImageError, match="over the limit"):
        trainer.predict(bomb)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "predict",
            "--weights",
            str(tmp_path / "w.safetensors"),
            str(bomb),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "over the limit" in out.stderr
    assert "Traceback" not in out.stderr


def test_big_legal_jpeg_is_decoded_reduced(tmp_path):
    import resource

    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (4000, 3000), "white")
    ImageDraw.Draw(photo).rectangle([1500, 600, 2500, 2400], fill=(40, 40, 40))  # a dark garment
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=90)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image = load_image(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (
        image.shape == (28, 28) and image[14, 14] > 150 and image[14, 2] < 50
    )  # inverted: light garment
    assert grown_mb < 30  # a full decode of 4000×3000 RGB alone is 36 MB


def test_keep_going_api(tmp_path):
    from fmnist_core import Trainer
    from fmnist_core.testing import synthetic_dataset

    data = synthetic_dataset()
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        Image_fromarray(data.test.images[i]).save(folder / f"{i}-good.png")
    (folder / "1-bad.png").write_bytes(b"not an image")
    trainer = Trainer(backend="numpy", data=data, verbose=0)
    with pytest.raises(ImageError, match="1-bad.png"):
        trainer.predict(folder)
    labels = trainer.predict(folder, on_error="skip")
    assert (
        len(labels) == 4 and labels[1] is None and all(labels[i] for i in (0, 2, 3))
    )  # sorted by name
    predictions = trainer.predict(folder, output="predictions", on_error="skip")
    assert (
        predictions[1].error and "1-bad.png" in predictions[1].error and predictions[1].index == -1
    )


def test_keep_going_cli(tmp_path):
    import json
    import subprocess
    import sys

    from fmnist_core import Trainer
    from fmnist_core.testing import synthetic_dataset

    data = synthetic_dataset()
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(5):
        Image_fromarray(data.test.images[i]).save(folder / f"{i}.png")
    (folder / "2b.png").write_bytes(b"")
    _big_png(folder / "3b.png", 20000, 20000)
    Trainer(backend="numpy", data=data, verbose=0).save(tmp_path / "w.safetensors")
    cli = [
        sys.executable,
        "-m",
        "fmnist_core.cli",
        "predict",
        "--weights",
        str(tmp_path / "w.safetensors"),
        str(folder),
    ]
    strict = subprocess.run(cli, capture_output=True, text=True)
    assert strict.returncode == 1 and strict.stdout == ""
    out = subprocess.run([*cli, "--keep-going", "--json"], capture_output=True, text=True)
    assert out.returncode == 1 and "2 of 7 images could not be read" in out.stderr
    rows = json.loads(out.stdout)
    assert [row["path"].rsplit("/", 1)[1] for row in rows] == [
        "0.png",
        "1.png",
        "2.png",
        "2b.png",
        "3.png",
        "3b.png",
        "4.png",
    ]
    assert [("error" in row) for row in rows] == [False, False, False, True, False, True, False]
    text = subprocess.run([*cli, "--keep-going"], capture_output=True, text=True)
    assert (
        text.returncode == 1
        and len(text.stdout.splitlines()) == 5
        and len(text.stderr.splitlines()) == 3
    )


def Image_fromarray(array):
    from PIL import Image

    return Image.fromarray(array, mode="L")


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(0, 70000),
    height=st.integers(0, 70000),
    mode=st.sampled_from(["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F", "LA", "CMYK"]),
    frames=st.integers(1, 3),
    fmt=st.sampled_from(["PNG", "GIF", "TIFF", "WEBP", "BMP"]),
)
def test_fuzz_image_headers(tmp_path_factory, width, height, mode, frames, fmt):
    """Declared sizes from 0 to 70000², many modes, animated files: a prediction or ImageError."""
    import struct
    import zlib

    from PIL import Image

    folder = tmp_path_factory.mktemp("hdr")
    path = folder / f"x.{fmt.lower()}"
    small = Image.new(
        mode if mode != "CMYK" or fmt in ("TIFF",) else "RGB",
        (max(1, width % 50), max(1, height % 50)),
    )
    try:
        if frames > 1 and fmt in ("PNG", "GIF", "WEBP"):
            small.convert("RGB").save(
                path, format=fmt, save_all=True, append_images=[small.convert("RGB")] * (frames - 1)
            )
        else:
            small.save(path, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # a mode that format cannot hold
    data = bytearray(path.read_bytes())
    if fmt == "PNG":  # rewrite the IHDR's declared size (and its CRC) to the drawn one
        struct.pack_into(">II", data, 16, width, height)
        struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
        path.write_bytes(bytes(data))
    try:
        image = load_image(path)
    except ImageError:
        return
    assert image.shape == (28, 28) and image.dtype.name == "uint8"
