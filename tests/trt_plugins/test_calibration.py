"""INT8 calibration batches (runtime/calibration.py): folder listing, letterboxing, batching and the
last partial batch. Pure NumPy; expected values are written out by hand."""

import numpy as np
import pytest
from PIL import Image
from sspnet.runtime.calibration import CalibrationBatches
from sspnet.runtime.engine_builder import save_calibration_array


def write_image(path, width, height, color):
    Image.new("RGB", (width, height), color).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Five solid-colour images a..e of different sizes, plus files that are not images."""
    colors = {"a": (255, 0, 0), "b": (0, 255, 0), "c": (0, 0, 255), "d": (10, 20, 30), "e": (200, 100, 50)}
    sizes = {"a": (100, 50), "b": (64, 64), "c": (30, 60), "d": (128, 96), "e": (64, 32)}
    for name, color in colors.items():
        write_image(tmp_path / f"{name}.png" if name != "d" else tmp_path / "d.JPG", *sizes[name], color)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "sub" / "z.png", 8, 8, (1, 1, 1))  # not searched recursively
    return tmp_path


def names(batches):
    return [[p.stem for p in batch] for batch in batches.batch_paths()]


def test_lists_images_by_name_and_pads_the_last_batch(folder):
    batches = CalibrationBatches(folder, (64, 64), batch_size=2)
    assert [p.name for p in batches.paths] == ["a.png", "b.png", "c.png", "d.JPG", "e.png"]
    assert len(batches) == 3
    assert names(batches) == [["a", "b"], ["c", "d"], ["e", "a"]]  # e plus the first image again


def test_drop_skips_the_partial_batch(folder):
    batches = CalibrationBatches(folder, (64, 64), batch_size=2, partial="drop")
    assert len(batches) == 2
    assert names(batches) == [["a", "b"], ["c", "d"]]


def test_fewer_images_than_one_batch_are_repeated(folder):
    batches = CalibrationBatches(folder, (64, 64), batch_size=3, max_images=1)
    assert names(batches) == [["a", "a", "a"]]


def test_fewer_images_than_one_batch_with_drop_is_an_error(folder):
    with pytest.raises(ValueError, match="has 1 images, fewer than one batch of 3"):
        CalibrationBatches(folder, (64, 64), batch_size=3, max_images=1, partial="drop")


def test_batches_are_uint8_nchw_and_letterboxed(folder):
    batches = CalibrationBatches(folder, (64, 64), batch_size=2)
    assert batches.shape == (2, 3, 64, 64) and batches.nbytes == 2 * 3 * 64 * 64
    produced = list(batches)
    assert len(produced) == 3
    assert all(b.dtype == np.uint8 and b.shape == (2, 3, 64, 64) and b.flags.c_contiguous for b in produced)

    # a: 100x50 (W x H) red -> scale min(64/50, 64/100) = 0.64 -> 64 wide, 32 high, zero rows below.
    a = produced[0][0]
    assert (a[:, :32, :] == np.array([255, 0, 0]).reshape(3, 1, 1)).all()
    assert (a[:, 32:, :] == 0).all()
    # b: 64x64 green fits exactly.
    assert (produced[0][1] == np.array([0, 255, 0]).reshape(3, 1, 1)).all()
    # c: 30x60 blue -> scale 64/60 -> 32 wide (round(30 * 1.0667)), 64 high, zero columns right.
    c = produced[1][0]
    assert (c[:, :, :32] == np.array([0, 0, 255]).reshape(3, 1, 1)).all()
    assert (c[:, :, 32:] == 0).all()
    # The padded slot repeats image a exactly.
    np.testing.assert_array_equal(produced[2][1], a)


def test_grey_images_become_rgb(tmp_path):
    Image.new("L", (16, 16), 77).save(tmp_path / "grey.png")
    (batch,) = list(CalibrationBatches(tmp_path, (16, 16), batch_size=1))
    assert (batch == 77).all() and batch.shape == (1, 3, 16, 16)


def test_save_calibration_array(folder, tmp_path):
    batches = CalibrationBatches(folder, (32, 32), batch_size=1)
    path = save_calibration_array(batches, tmp_path / "calib.npy")
    array = np.load(path)
    assert array.shape == (5, 3, 32, 32) and array.dtype == np.uint8
    np.testing.assert_array_equal(
        array[1], np.broadcast_to(np.array([0, 255, 0], np.uint8).reshape(3, 1, 1), (3, 32, 32))
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(batch_size=2, max_images=0), "max_images must be a positive integer"),
        (dict(batch_size=2, partial="wrap"), "partial must be one of"),
        (dict(batch_size=2, input_size=(64,)), r"input_size must be \(H, W\)"),
    ],
)
def test_bad_arguments(folder, kwargs, message):
    kwargs = {"input_size": (64, 64), **kwargs}
    with pytest.raises(ValueError, match=message):
        CalibrationBatches(folder, **kwargs)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        CalibrationBatches(tmp_path / "nowhere", (64, 64), 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no .jpg/.jpeg/.png/.bmp images"):
        CalibrationBatches(tmp_path / "empty", (64, 64), 2)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    batches = CalibrationBatches(tmp_path, (8, 8), 1)
    with pytest.raises(ValueError, match="broken.png cannot be read"):
        list(batches)
