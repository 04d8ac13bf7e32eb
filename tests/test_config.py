import pytest

from gridgeo.config import BANNER, Coverage, GridConfig, Level
from gridgeo.errors import LayerError


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
    with pytest.raises(ValueError, match="code_digits"):
        GridConfig(root_code="1101", levels=(Level("city", "市", "city", 6, Coverage.ROOT),))


def test_tolerances_are_ordered():
    t = BANNER.tolerances
    assert t.dust < t.sliver < t.noise < t.defect
