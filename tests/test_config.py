from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridgeo.config import BANNER, Coverage, GridConfig, Level, Role, Tolerances
from gridgeo.errors import ConfigError, DataFileError, GridgeoError, LayerError


def test_banner_levels_and_code_lengths():
    assert BANNER.level_names == ["banner", "town", "grid", "micro_grid"]
    assert [lv.code_length for lv in BANNER.levels] == [6, 9, 12, 15]
    assert BANNER.level("town").coverage is Coverage.FULL
    assert BANNER.level("grid").coverage is Coverage.FULL
    assert BANNER.level("micro_grid").coverage is Coverage.REFINED
    assert BANNER.parent("grid").name == "town"
    assert BANNER.child("grid").name == "micro_grid"
    assert BANNER.parent("banner") is None and BANNER.child("micro_grid") is None


def test_unknown_level_names_the_levels():
    with pytest.raises(LayerError, match="micro_grid"):
        BANNER.level("village")


def test_another_system_is_just_configuration():
    city = GridConfig(
        root_code="1101",
        root_name="某市",
        levels=(
            Level("city", "市", "city", 4, Coverage.ROOT),
            Level("street", "街道", "street", 2, Coverage.FULL),
            Level("grid", "网格", "grid", 2, Coverage.FULL),
        ),
    )
    assert city.level("grid").code_length == 8
    with pytest.raises(ConfigError, match=r"levels\[0\]\.code_digits.*1101"):
        GridConfig(root_code="1101", levels=(Level("city", "市", "city", 6, Coverage.ROOT),))


def test_tolerances_are_ordered():
    t = BANNER.tolerances
    assert t.dust < t.sliver < t.noise < t.defect


CITY = GridConfig(
    root_code="150800",
    root_name="巴彦淖尔市",
    levels=(
        Level("city", "市", "city", 4, Coverage.ROOT),
        Level("county", "旗县区", "county", 2, Coverage.FULL),
        Level("street", "街道", "street", 3, Coverage.FULL),
        Level("cell", "单元", "cell", 3, Coverage.REFINED),
    ),
    metric_crs="auto",
    roles=(("district", "county"),),
    dual_sources=("party_net", "clean_net"),
    tolerances=Tolerances(noise=3.0),
    shapefile_fields=(*BANNER.shapefile_fields, ("inspector_name", "inspector")),
)


# -- root codes with padding zeros ---------------------------------------------------
def test_padded_root_code_keeps_its_significant_prefix():
    assert CITY.root_prefix == "1508"
    assert [lv.code_length for lv in CITY.levels] == [4, 6, 9, 12]
    assert [lv.code_width for lv in CITY.levels] == [6, 6, 9, 12]


def test_root_digits_must_cut_only_padding_zeros():
    levels = (Level("city", "市", "city", 3, Coverage.ROOT),)
    with pytest.raises(ConfigError, match=r"150800.*padding zeros \(4 for 150800\)"):
        GridConfig(root_code="150800", levels=levels)


def test_level_code_columns_get_short_dbf_names():
    fields = dict(CITY.shapefile_fields)
    assert CITY.level("county").code_column == "county_code"
    assert fields["county_code"] == "county_cd" and fields["street_code"] == "street_cd"
    assert fields["city_code"] == "city_code"  # fits as it is
    assert all(len(v) <= 10 for v in fields.values())


# -- roles ------------------------------------------------------------------------------
def test_declared_roles_override_defaults():
    config = GridConfig(
        root_code="150800",
        levels=CITY.levels,
        roles=(("workload", "county"),),
    )
    assert config.role_name(Role.WORKLOAD) == "county"
    assert config.role_name(Role.REFINEMENT) == "cell"  # still by position


def test_roles_must_name_levels():
    with pytest.raises(ConfigError, match=r"roles\.workload.*'grid' is not a level"):
        GridConfig(root_code="150800", levels=CITY.levels, roles=(("workload", "grid"),))
    with pytest.raises(ConfigError, match=r"roles\.boss"):
        GridConfig(root_code="150800", levels=CITY.levels, roles=(("boss", "city"),))


# -- the TOML file ----------------------------------------------------------------------
def test_toml_round_trip(tmp_path):
    path = tmp_path / "city.toml"
    path.write_text(CITY.to_toml(), encoding="utf-8")
    assert GridConfig.from_toml(path) == CITY
    text = path.read_text(encoding="utf-8")
    assert 'metric = "auto"' in text and 'district = "county"' in text
    assert '# workload = "street"' in text  # defaults shown as comments
    assert '"inspector_name" = "inspector"' in text
    assert '"parent_code"' not in text  # gridgeo's own fields are not repeated


@given(
    name=st.text(min_size=1, max_size=12).filter(lambda t: t == t.strip()),
    label=st.text(max_size=12),
)
def test_toml_round_trip_any_text(name, label):
    config = GridConfig(
        root_code="150800",
        root_name=label,
        levels=(
            Level("city", label, label, 4, Coverage.ROOT),
            Level(name if name != "city" else "x", label, "en", 2, Coverage.FULL),
        ),
        dual_sources=(),
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(config.to_toml(), encoding="utf-8")
        assert GridConfig.from_toml(path) == config


def _write(tmp_path, text: str):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_toml_names_the_file_and_line(tmp_path):
    path = _write(tmp_path, "[root]\ncode = 150800 oops\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not a valid TOML file.*line 2"):
        GridConfig.from_toml(path)


def test_unknown_keys_are_named_with_the_allowed_ones(tmp_path):
    text = CITY.to_toml()
    path = _write(tmp_path, text.replace("[tolerances]", "[tolerances]\nsliverr = 2.0"))
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'tolerances\.sliverr'.*sliver"):
        GridConfig.from_toml(path)
    path = _write(tmp_path, text.replace('coverage = "root"', 'coverage = "root"\ndigits = 4'))
    with pytest.raises(ConfigError, match=r"unknown key 'levels\[0\]\.digits'.*code_digits"):
        GridConfig.from_toml(path)
    path = _write(tmp_path, "colour = 1\n" + text)
    with pytest.raises(ConfigError, match=r"unknown key 'colour'.*at the top"):
        GridConfig.from_toml(path)


def test_inconsistent_widths_name_the_key(tmp_path):
    text = CITY.to_toml().replace("code_digits = 4", "code_digits = 3", 1)
    with pytest.raises(ConfigError, match=r"bad\.toml: key 'levels\[0\]\.code_digits'"):
        GridConfig.from_toml(_write(tmp_path, text))
    text = CITY.to_toml().replace("code_digits = 2", 'code_digits = "2"', 1)
    with pytest.raises(ConfigError, match=r"levels\[1\]\.code_digits': expected a whole number"):
        GridConfig.from_toml(_write(tmp_path, text))


def test_wrong_values_name_the_key(tmp_path):
    text = CITY.to_toml()
    cases = {
        'coverage = "full"': ('coverage = "all"', r"levels\[1\]\.coverage.*'all'"),
        "noise = 3.0": ("noise = -1", r"tolerances\.noise.*> 0"),
        'sources = ["party_net", "clean_net"]': ('sources = ["a"]', r"dual\.sources"),
    }
    for old, (new, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            GridConfig.from_toml(_write(tmp_path, text.replace(old, new, 1)))


def test_missing_file_is_a_data_file_error(tmp_path):
    with pytest.raises(DataFileError, match="cannot read the configuration"):
        GridConfig.from_toml(tmp_path / "nothing.toml")
    assert issubclass(ConfigError, GridgeoError)


# -- inference --------------------------------------------------------------------------
def test_infer_orders_levels_by_width_and_finds_the_dual_sources():
    layers = {
        "cell": pd.DataFrame({"code": ["150802001001"], "parent_code": ["150802001"]}),
        "city": pd.DataFrame({"code": ["150800"], "name": ["巴彦淖尔市"], "parent_code": [""]}),
        "street": pd.DataFrame(
            {"code": ["150802001", "150802002"], "parent_code": ["150802", "150802"]}
        ),
        "party": pd.DataFrame({"code": ["150802001"], "parent_code": ["150802"]}),
        "clean": pd.DataFrame({"code": ["150802002"], "parent_code": ["150802"]}),
        "county": pd.DataFrame({"code": ["150802"], "parent_code": ["150800"]}),
        "roads": pd.DataFrame({"kind": ["primary"]}),
    }
    config = GridConfig.infer(layers)
    assert config.level_names == ["city", "county", "street", "cell"]
    assert [lv.code_digits for lv in config.levels] == [4, 2, 3, 3]
    assert config.level("cell").coverage == Coverage.REFINED  # 150802002 has no cells
    assert config.level("street").coverage == Coverage.FULL
    assert config.dual_sources == ("party", "clean")
    assert config.root_name == "巴彦淖尔市" and config.metric_crs == "auto"


def test_infer_keeps_a_root_code_its_children_repeat():
    layers = {
        "county": pd.DataFrame({"code": ["150823"]}),
        "town": pd.DataFrame({"code": ["150823100"], "parent_code": ["150823"]}),
    }
    assert [lv.code_digits for lv in GridConfig.infer(layers).levels] == [6, 3]


def test_infer_refuses_a_root_of_many_codes():
    layers = {"a": pd.DataFrame({"code": ["1501", "1502"]})}
    with pytest.raises(ConfigError, match=r"layer 'a'.*2 codes.*one top polygon"):
        GridConfig.infer(layers)
    with pytest.raises(ConfigError, match="no layer"):
        GridConfig.infer({"roads": pd.DataFrame({"kind": ["x"]})})


def test_the_readme_example_is_a_valid_configuration(tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Any county")[1].split("```toml\n")[1].split("```")[0]
    path = tmp_path / "readme.toml"
    path.write_text(example, encoding="utf-8")
    config = GridConfig.from_toml(path)
    assert config.level_names == CITY.level_names
    assert config.root_prefix == "1508" and config.metric_is_auto
    assert config.role_name(Role.WORKLOAD) == "street"
    assert config.dual_sources == CITY.dual_sources
