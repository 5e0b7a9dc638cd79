from pathlib import Path

import pytest

from marsvision.training.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    list_recipes,
    load_config,
    load_recipe_values,
    parse_override,
)


def test_defaults_build_without_recipe():
    config = load_config(None, [])
    assert isinstance(config, RunConfig)
    assert config.data.batch_size == 8
    assert config.optim.lr == pytest.approx(0.002 * 8**0.5)


def test_overrides_are_typed_and_nested():
    config = load_config(None, ["optim.lr=0.01", "data.image_size=64", "trainer.precision=bf16-mixed"])
    assert config.optim.lr == 0.01
    assert config.data.image_size == 64
    assert config.trainer.precision == "bf16-mixed"


def test_a_value_yaml_cannot_read_is_its_text():
    assert parse_override("data.root={shared}/paired") == (["data", "root"], "{shared}/paired")
    assert parse_override("data.root='{shared}/paired'") == (["data", "root"], "{shared}/paired")
    with pytest.raises(ConfigError, match=r"optim\.milestones: expected a list, got '\[15'"):
        load_config(None, ["optim.milestones=[15"])


def test_a_number_names_the_choice_it_spells():
    # `trainer.precision=32` parses as the int 32; the choice "32" is what was meant (the CLI used to refuse it)
    assert load_config(None, ["trainer.precision=32"]).trainer.precision == "32"
    assert load_config(None, ["trainer.precision=64"]).trainer.precision == "64"
    with pytest.raises(ConfigError, match=r"trainer\.precision: 16 is not one of"):
        load_config(None, ["trainer.precision=16"])


def test_int_is_accepted_where_float_is_expected_and_none_where_optional():
    config = load_config(None, ["optim.lr=1", "data.label_count=null", "data.chronological=0.6"])
    assert isinstance(config.optim.lr, float)
    assert config.data.label_count is None
    assert config.data.chronological == 0.6


def test_exponent_notation_is_a_float_on_the_command_line_and_in_a_recipe(tmp_path):
    # PyYAML reads 1e-6 (no dot) as text; a user means one millionth
    config = load_config(None, ["optim.lr=1e-6", "optim.pretrained_backbone_lr=2.5E-4", "data.chronological=6e-1"])
    assert (config.optim.lr, config.optim.pretrained_backbone_lr, config.data.chronological) == (1e-6, 2.5e-4, 0.6)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  lr: 3e-4\n  weight_decay: -1e-2\n")
    with pytest.raises(ConfigError, match=r"optim\.weight_decay must be >= 0, got -0\.01"):
        load_config(str(recipe))
    assert load_config(str(recipe), ["optim.weight_decay=1e-2"]).optim.lr == 3e-4
    with pytest.raises(ConfigError, match=r"optim\.lr: expected float, got str '1e-6x'"):
        load_config(None, ["optim.lr=1e-6x"])
    assert load_config(None, ["name=1e-6"]).name == "1e-6"  # a text field keeps the text
    with pytest.raises(ConfigError, match=r"optim\.lr: expected float, got str '1e400'"):
        load_config(None, ["optim.lr=1e400"])  # not a finite float: no silent infinity


def test_unknown_key_names_the_key_and_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.lrr'.*did you mean 'lr'"):
        load_config(None, ["optim.lrr=0.1"])


def test_unknown_section_is_reported():
    with pytest.raises(ConfigError, match="unknown config key 'optimizer'"):
        load_config(None, ["optimizer.lr=0.1"])


def test_mistyped_value_names_key_and_type():
    with pytest.raises(ConfigError, match=r"data\.batch_size: expected int, got str 'eight'"):
        load_config(None, ["data.batch_size=eight"])
    with pytest.raises(ConfigError, match="task: 'dance' is not one of"):
        load_config(None, ["task=dance"])
    with pytest.raises(ConfigError, match=r"data\.batch_size: expected int, got bool"):
        load_config(None, ["data.batch_size=true"])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="not of the form"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match="empty key part"):
        parse_override("optim..lr=1")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_every_bundled_recipe_loads_and_describes_itself():
    recipes = list_recipes()
    assert {"simclr-ai4mars", "finetune-ai4mars", "goh-label-fractions"} <= set(recipes)
    for name, description in recipes.items():
        assert description, f"recipe {name} has no description"
        load_config(name, [])


def test_recipe_base_is_merged_and_overrides_win():
    values = load_recipe_values("goh-label-fractions")
    assert values["model"]["encoder"] == "r50_2x_sk1"  # from the base recipe
    assert values["sweep"]["grid"]["data.label_fraction"][0] == 0.01
    config = load_config("goh-label-fractions", ["model.encoder=resnet18"])
    assert config.model.encoder == "resnet18"


def test_recipe_from_path_and_bad_files(tmp_path: Path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("name: mine\ndata:\n  batch_size: 3\n")
    assert load_config(str(recipe), []).data.batch_size == 3
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"), [])
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_config("nope", [])
    recipe.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(recipe), [])
    recipe.write_text("data:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match=r"data\.batchsize"):
        load_config(str(recipe), [])
