import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist_core.errors import ImageError
from fmnist_core.images import collect_image_paths, load_image, load_images


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


@pytest.mark.parametrize("content, message", [(b"not an image", "not an image"), (b"", "is an empty file")])
def test_unreadable_files_named(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "a.png")
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
