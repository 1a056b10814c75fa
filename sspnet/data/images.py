"""Reading a record's image, without torch (the runtime's benchmarks and evaluation use it too)."""

from __future__ import annotations

import numpy as np

from .tinyperson import ImageRecord


def read_image(record: ImageRecord) -> np.ndarray:
    """The record's (sub-)image as uint8 [height, width, 3] RGB; a corner past the file is zero-padded."""
    from PIL import Image

    if record.path is None:
        raise ValueError(f"image {record.file_name!r} (id {record.image_id}): no image root was given to the loader")
    try:
        with Image.open(record.path) as image:
            if record.corner is not None:
                image = image.crop(record.corner)  # PIL pads outside the file with zeros
            array = np.array(image.convert("RGB"))
    except Exception as err:  # PIL raises several types for corrupt files
        raise ValueError(f"cannot read image {record.path}: {err}") from None
    if array.shape[:2] != (record.height, record.width):
        padded = np.zeros((record.height, record.width, 3), np.uint8)
        h, w = min(array.shape[0], record.height), min(array.shape[1], record.width)
        padded[:h, :w] = array[:h, :w]
        array = padded
    return array
