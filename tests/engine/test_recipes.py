"""Training recipes: lookup, budget arithmetic, and the configs they produce."""

import pytest

from sspnet.engine.recipes import RECIPES, SYNTHETIC_CPU, get_recipe, iterations_for_budget
from sspnet.models.presets import load_preset


def test_every_recipe_names_a_valid_preset_and_overrides():
    for recipe in RECIPES.values():
        config = load_preset(recipe.preset, **recipe.overrides)  # raises on a bad key or value
        for key, value in recipe.overrides.items():
            assert getattr(config, key) == value


def test_lookup_and_unknown_names():
    assert get_recipe("synthetic-cpu") is SYNTHETIC_CPU
    with pytest.raises(
        ValueError, match="'nope' unknown; choose from \\['synthetic-cpu', 'synthetic-cpu-faster-rcnn'\\]"
    ):
        get_recipe("nope")


def test_iterations_for_budget():
    assert iterations_for_budget(0.3, 540.0) == 1620  # 0.9 * 540 / 0.3
    assert iterations_for_budget(0.3, 540.0, margin=1.0) == 1800
    assert iterations_for_budget(100.0, 5.0) == 10  # never below the minimum
    with pytest.raises(ValueError, match="positive"):
        iterations_for_budget(0.0, 10.0)


def test_with_overrides_changes_only_the_model_settings():
    fpn = SYNTHETIC_CPU.with_overrides("x", neck="fpn", attention_loss="none")
    assert fpn.overrides == {**SYNTHETIC_CPU.overrides, "neck": "fpn", "attention_loss": "none"}
    assert (fpn.batch_size, fpn.lr, fpn.clip_grad, fpn.augment) == (
        SYNTHETIC_CPU.batch_size,
        SYNTHETIC_CPU.lr,
        SYNTHETIC_CPU.clip_grad,
        SYNTHETIC_CPU.augment,
    )
    assert "neck" not in SYNTHETIC_CPU.overrides  # the original is untouched


def test_train_config_and_calibration(tmp_path):
    from sspnet.data.synth import write_dataset

    write_dataset(tmp_path / "data", 4, seed=0, val_fraction=0.5, size=(128, 128), progress=False)
    config = SYNTHETIC_CPU.train_config(tmp_path / "data", tmp_path / "run", max_iters=7, seed=3)
    assert (config.preset, config.max_iters, config.seed, config.batch_size) == (SYNTHETIC_CPU.preset, 7, 3, 2)
    assert config.model_overrides == SYNTHETIC_CPU.overrides and config.model_overrides is not SYNTHETIC_CPU.overrides
    assert 0 < SYNTHETIC_CPU.seconds_per_iteration(steps=1, size=(64, 64)) < 60
