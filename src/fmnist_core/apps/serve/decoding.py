"""A request's images: read from multipart files or JSON, checked against the limits before
any is decoded, decoded to the model's 28×28 input."""

import base64
import binascii
import json

import numpy as np

from ...errors import ImageError
from .settings import BadRequest, ServeSettings


def _decode_all(blobs: list[tuple[str, bytes]], settings: ServeSettings) -> np.ndarray:
    from ...data.images import image_from_bytes

    if not blobs:
        raise BadRequest(
            400,
            'no images in the request; fix: send multipart files or JSON {"images": [base64, ...]}',
        )
    if len(blobs) > settings.max_files:
        raise BadRequest(
            413,
            f"{len(blobs)} images in one request, over the limit of {settings.max_files}; "
            "fix: send fewer per request",
        )
    for name, data in blobs:
        if len(data) > settings.max_bytes:
            raise BadRequest(
                413,
                f"{name} is {len(data):,} bytes, over the limit of {settings.max_bytes:,}; "
                "fix: send a smaller image",
            )
    declared = sum(_declared_pixels(data) for _, data in blobs)
    if declared > settings.max_request_pixels:
        raise BadRequest(
            413,
            f"the request's images declare {declared:,} pixels, over the limit of "
            f"{settings.max_request_pixels:,} per request; fix: send fewer or smaller images",
        )
    images = []
    for name, data in blobs:
        try:
            images.append(image_from_bytes(data, name, settings.max_pixels))
        except ImageError as exc:
            raise BadRequest(400, str(exc)) from None
    return np.stack(images)


def _png_base64(image: np.ndarray) -> str:
    """A 28×28 uint8 model input as a base64 PNG (the page shows it: what the model sees)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _declared_pixels(data: bytes) -> int:
    """The pixels an image's header declares (0 when it has none: decoding then says why)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not an image: image_from_bytes gives the one-line reason
        return 0
    return width * height


def _json_blobs(body: bytes) -> list[tuple[str, bytes]]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(
            400,
            f'the request body is not valid JSON ({exc}); fix: send {{"images": [base64, ...]}}',
        ) from None
    except RecursionError:
        raise BadRequest(
            400, 'the request body nests too deeply; fix: send {"images": [base64, ...]}'
        ) from None
    items = (
        payload.get("images", [payload["image"]] if "image" in payload else None)
        if isinstance(payload, dict)
        else None
    )
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise BadRequest(
            400, 'JSON must be {"images": ["<base64 PNG>", ...]}; fix: send that shape'
        )
    blobs = []
    for number, item in enumerate(items):
        try:
            blobs.append(
                (f"images[{number}]", base64.b64decode(item.split(",")[-1], validate=True))
            )
        except (binascii.Error, ValueError):
            raise BadRequest(
                400, f"images[{number}] is not valid base64; fix: base64-encode the PNG bytes"
            ) from None
    return blobs
