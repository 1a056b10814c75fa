"""Reading image files without torch (the runtime's benchmarks, evaluation and `predict` use it too).

    read_image(record)          a record's (sub-)image as uint8 RGB, errors naming the file
    jpeg_is_truncated(path)     True for a JPEG file whose end-of-image marker is missing

A truncated JPEG (an interrupted copy or download) still decodes with OpenCV: libjpeg fills the
missing rows with grey and prints only an anonymous "Premature end of JPEG file". Checking the
end-of-image marker (FF D9) lets the caller say WHICH file is damaged.
"""

from __future__ import annotations

import os

import numpy as np

from sspnet.errors import InputError

from .tinyperson import ImageRecord

JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
_JPEG_TAIL = 1024  # bytes searched for the end marker: encoders may pad after it (zeros, whitespace)


def jpeg_is_truncated(path: str | os.PathLike) -> bool:
    """True when `path` is a JPEG file (starts with FF D8) that does not end with the end-of-image
    marker FF D9 (trailing padding of zero bytes or whitespace allowed). False for other files.
    Raises OSError when the file cannot be read."""
    with open(path, "rb") as f:
        if f.read(2) != JPEG_START:
            return False
        size = f.seek(0, os.SEEK_END)
        f.seek(max(2, size - _JPEG_TAIL))
        tail = f.read()
    return not tail.rstrip(b"\x00 \t\r\n").endswith(JPEG_END)


def read_image(record: ImageRecord) -> np.ndarray:
    """The record's (sub-)image as uint8 [height, width, 3] RGB; a corner past the file is zero-padded."""
    from PIL import Image

    if record.path is None:
        raise InputError(f"image {record.file_name!r} (id {record.image_id}): no image root was given to the loader")
    try:
        with Image.open(record.path) as image:
            if record.corner is not None:
                image = image.crop(record.corner)  # PIL pads outside the file with zeros
            array = np.array(image.convert("RGB"))
    except FileNotFoundError:
        raise  # the dispatcher names the missing file
    except Exception as err:  # PIL raises several types for corrupt files
        raise InputError(f"cannot read image: {err}", path=record.path) from None
    if array.shape[:2] != (record.height, record.width):
        padded = np.zeros((record.height, record.width, 3), np.uint8)
        h, w = min(array.shape[0], record.height), min(array.shape[1], record.width)
        padded[:h, :w] = array[:h, :w]
        array = padded
    return array
