"""Turning users' images into the dataset's form: 28×28, 8-bit grayscale, light object on black.

What is done, in order:

1. Any mode is accepted. Transparent pixels (alpha, or a palette's transparent colour) are
   composited onto black, the dataset's background. 16-bit and float images are scaled to 8 bits.
2. Colour becomes grayscale (ITU-R 601 luma, as Pillow's ``convert("L")``).
3. Fashion-MNIST shows light garments on a black background. When the image's border is mostly
   light (a photo or drawing on white paper), the image is inverted.
4. An image of another size is scaled, keeping its aspect ratio, to fit 28×28, and centred on
   a black canvas.

Images declaring more than ``MAX_PIXELS`` (40 million) pixels are refused before decoding; a
large JPEG is decoded at a reduced scale; an animated image (GIF, APNG, WebP) gives its first
frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from .spec import IMAGE_SHAPE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 40_000_000
"""Default limit on an image's declared size (Pillow refuses only above ~179 million)."""
SIZE = IMAGE_SHAPE[0]


def _to_uint8_gray(image) -> np.ndarray:
    from PIL import Image

    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        if image.mode == "F":
            top = 1.0 if array.max() <= 1.0 else 255.0
        return np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def to_dataset_form(gray: np.ndarray) -> np.ndarray:
    """Invert light-background images and fit them into 28×28 (see the module docstring)."""
    from PIL import Image

    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127:
        gray = 255 - gray
    if gray.shape == (SIZE, SIZE):
        return np.ascontiguousarray(gray)
    height, width = gray.shape
    scale = SIZE / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(gray).resize(new_size, Image.Resampling.LANCZOS))
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    top, left = (SIZE - new_size[1]) // 2, (SIZE - new_size[0]) // 2
    canvas[top : top + new_size[1], left : left + new_size[0]] = resized
    return canvas


def load_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read one image file as a (28, 28) uint8 array in the dataset's form.

    The size an image declares is checked before any pixel is decoded: over ``max_pixels``
    (default ``MAX_PIXELS``, far below Pillow's own bomb limit) it is an ``ImageError``. A large
    JPEG is decoded at a reduced scale (``draft``), so a photo is never decoded at full size only
    to become 28×28. An animated image gives its first frame.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise ImageError(f"{path} is an empty file", fix="pass a PNG or JPEG image")
    return _decode(path, path, max_pixels)


def image_from_bytes(
    data: bytes, name: str = "<upload>", max_pixels: int | None = None
) -> np.ndarray:
    """``load_image`` for the bytes of an image file (an upload); ``name`` appears in errors."""
    import io

    if not data:
        raise ImageError(f"{name} is an empty file", fix="send a PNG or JPEG image")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source, path, max_pixels: int | None) -> np.ndarray:
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", Image.DecompressionBombWarning
            )  # fmnist's own limit applies
            with Image.open(source) as image:
                _check_size(path, image.width, image.height, limit)
                if image.format == "JPEG" and max(image.size) > 4 * SIZE:
                    image.draft("L", (4 * SIZE, 4 * SIZE))  # decode at 1/2, 1/4 or 1/8 scale
                image.load()
                gray = _to_uint8_gray(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses before fmnist sees the size
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow decodes"
        raise ImageError(
            f"{path} declares {size}, over the limit of {limit:,} (a decompression bomb?)",
            fix="shrink the image, or raise the limit (--max-pixels / max_pixels=)",
        ) from exc
    except FileNotFoundError as exc:
        raise ImageError(f"{path} does not exist", fix="check the path") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{path} is not an image Pillow can read", fix="pass a PNG or JPEG file"
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageError(
            f"{path} is a damaged or truncated image ({str(exc)[:160]})",
            fix="re-export or re-download it",
        ) from exc
    return to_dataset_form(gray)


def _check_size(path: Path, width: int, height: int, limit: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(
            f"{path} is an empty image ({width}×{height})", fix="use a non-empty image"
        )
    if width * height > limit:
        raise ImageError(
            f"{path} is {width}×{height} = {width * height:,} pixels, over the limit of {limit:,}",
            fix="shrink the image, or raise the limit (--max-pixels / max_pixels=)",
        )


def collect_image_paths(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (their image files, sorted by name) into a list of paths."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise ImageError(
                    f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                    fix="point at a folder of PNG or JPEG files",
                )
            paths += found
        elif item.exists():
            paths.append(item)
        else:
            raise ImageError(f"{item} does not exist", fix="check the path")
    return paths


@dataclass(frozen=True)
class BadImage:
    """An image that could not be read, with fmnist's one-line message."""

    path: Path
    error: str


def load_images(
    inputs: Iterable[str | os.PathLike], *, max_pixels: int | None = None, on_error: str = "raise"
) -> tuple[list[Path], np.ndarray]:
    """The image paths behind ``inputs`` and their (N, 28, 28) uint8 array.

    ``on_error="raise"`` (default) stops at the first unreadable image; ``"skip"`` leaves bad
    images out of both lists (``load_images_keep_going`` also reports them).
    """
    paths, images, _ = load_images_keep_going(inputs, max_pixels=max_pixels, on_error=on_error)
    if not paths:
        raise ImageError("no readable images given", fix="pass image files or folders")
    return paths, images


def load_images_keep_going(
    inputs: Iterable[str | os.PathLike], *, max_pixels: int | None = None, on_error: str = "skip"
) -> tuple[list[Path], np.ndarray, list[BadImage]]:
    """Like ``load_images``, also returning the images that failed and why."""
    return read_images(collect_image_paths(inputs), max_pixels=max_pixels, on_error=on_error)


def read_images(
    paths: list[Path], *, max_pixels: int | None = None, on_error: str = "skip"
) -> tuple[list[Path], np.ndarray, list[BadImage]]:
    """Decode image files already listed (``collect_image_paths``): the readable paths, their
    (N, 28, 28) uint8 array, and the unreadable ones with fmnist's message."""
    if on_error not in ("raise", "skip"):
        from ..errors import ConfigError

        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not paths:
        raise ImageError("no images given", fix="pass image files or folders")
    good, arrays, bad = [], [], []
    for path in paths:
        try:
            arrays.append(load_image(path, max_pixels=max_pixels))
            good.append(path)
        except ImageError as exc:
            if on_error == "raise":
                raise
            bad.append(BadImage(path, str(exc)))
    images = np.stack(arrays) if arrays else np.zeros((0, *IMAGE_SHAPE), np.uint8)
    return good, images, bad


def save_samples(
    split, folder: str | os.PathLike, count: int = 10, start: int = 0
) -> list[tuple[Path, int, str]]:
    """Write images ``start … start+count-1`` of a dataset split as PNG files into ``folder``.

    Files are named ``{index:05d}-{label}.png`` (label lower-case, spaces as dashes) and a
    ``labels.csv`` (``file,dataset_index,label``: the image's index in its split, its true
    label) lists them, like the article's ``sample-request/``.
    Returns ``(path, dataset index, label)`` per image.
    """
    import io

    from PIL import Image

    from ..atomic import atomic_write_bytes
    from ..errors import ConfigError
    from ..labels import LABELS

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(
            f"count must be an integer ≥ 1, got {count!r}", fix="pass --count 1 or more"
        )
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < len(split):
        raise ConfigError(
            f"start must be an index in 0…{len(split) - 1}, got {start!r}",
            fix="pass a smaller --start",
        )
    folder = Path(folder)
    written = []
    for index in range(start, min(start + count, len(split))):
        label = LABELS[int(split.labels[index])]
        path = folder / f"{index:05d}-{label.lower().replace(' ', '-').replace('/', '-')}.png"
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(split.images[index], np.uint8), mode="L").save(
            buffer, format="PNG"
        )
        atomic_write_bytes(path, buffer.getvalue())
        written.append((path, index, label))
    rows = "file,dataset_index,label\n" + "".join(f"{p.name},{i},{lab}\n" for p, i, lab in written)
    atomic_write_bytes(folder / "labels.csv", rows.encode())
    return written
