import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS
from shapely import box

from gridgeo.codes import number_children, reading_order
from gridgeo.errors import CodeError, CrsError, GeometryError, LayerError, SchemaError
from gridgeo.model import GridSystem
from tests.conftest import tiny_layers


def test_from_layers_and_lineage(tiny):
    assert tiny.counts() == {"banner": 1, "town": 2, "grid": 4, "micro_grid": 3}
    lin = tiny.lineage("micro_grid")
    assert list(lin.columns) == ["banner", "town", "grid", "micro_grid"]
    assert set(lin["grid"]) == {"150823100001"}
    assert set(lin["town"]) == {"150823100"}


def test_lineage_follows_codes_not_row_order(tiny):
    shuffled = tiny.replace(grid=tiny["grid"].iloc[::-1].reset_index(drop=True))
    assert shuffled.lineage("micro_grid").equals(tiny.lineage("micro_grid"))


def test_summary_counts_and_areas(tiny):
    s = tiny.summary()
    assert s.loc["grid", "count"] == 4
    assert s.loc["grid", "households"] == 420 + 380 + 90 + 75
    # Grids tile the banner. Not bit-equal: straight lon/lat edges bend when
    # projected, and the grids have more vertices than the banner square.
    assert s.loc["grid", "area_km2"] == pytest.approx(s.loc["banner", "area_km2"], rel=1e-5)
    assert 150 < s.loc["banner", "area_km2"] < 200  # 0.2° x 0.1° at 40.75°N


def test_codes_are_text_even_when_given_as_integers():
    layers = tiny_layers()
    layers["town"]["code"] = layers["town"]["code"].astype(np.int64)
    system = GridSystem.from_layers(layers)
    assert system["town"]["code"].tolist() == ["150823100", "150823101"]


@pytest.mark.parametrize(
    ("mutate", "error", "needle"),
    [
        (lambda ls: ls.pop("micro_grid"), LayerError, "micro_grid"),
        (lambda ls: ls.update(grid=ls["grid"].drop(columns="parent_code")), SchemaError, "parent_code"),
        (lambda ls: ls["grid"].set_crs(None, allow_override=True, inplace=True), CrsError, "'grid'"),
        (lambda ls: ls["town"].to_crs(4326, inplace=True), CrsError, "different CRSs"),
        (lambda ls: ls["grid"].loc.__setitem__((1, "code"), "150823100001"), CodeError, "duplicate"),
        (lambda ls: ls["micro_grid"].loc.__setitem__((0, "parent_code"), "150823100999"), CodeError,
         "150823100999"),
        (lambda ls: ls["grid"].loc.__setitem__((2, "code"), "150823100009"), CodeError, "extend"),
        (lambda ls: ls["grid"].loc.__setitem__((2, "code"), "15082310100A"), CodeError, "12 digits"),
        (lambda ls: ls["grid"].loc.__setitem__((2, "geometry"), None), GeometryError, "row 2"),
    ],
)  # fmt: skip
def test_bad_input_names_layer_and_row(mutate, error, needle):
    layers = tiny_layers()
    mutate(layers)
    with pytest.raises(error, match=needle):
        GridSystem.from_layers(layers, origin="test.gpkg")


def test_lenient_load_keeps_code_defects_for_the_check():
    layers = tiny_layers()
    layers["grid"].loc[1, "code"] = "150823100001"
    system = GridSystem.from_layers(layers, strict=False)
    assert system["grid"]["code"].duplicated().sum() == 1
    with pytest.raises(CodeError):
        system.validate_codes()


def test_non_polygon_geometry_is_refused():
    layers = tiny_layers()
    layers["grid"].loc[0, "geometry"] = layers["grid"].geometry.iloc[0].boundary
    with pytest.raises(GeometryError, match="LineString"):
        GridSystem.from_layers(layers)


def test_number_children_reads_like_a_page():
    # A 3 x 3 block of squares, shuffled: codes go north→south, west→east.
    cells = [(i, j) for i in range(3) for j in range(3)]
    rng = np.random.default_rng(1)
    order = rng.permutation(9)
    geoms = [box(cells[k][0], cells[k][1], cells[k][0] + 1, cells[k][1] + 1) for k in order]
    frame = gpd.GeoDataFrame(geometry=geoms)
    codes = number_children(frame, pd.Series(["150823100"] * 9), 3)
    by_code = dict(zip(codes, [cells[k] for k in order], strict=True))
    expected = [(0, 2), (1, 2), (2, 2), (0, 1), (1, 1), (2, 1), (0, 0), (1, 0), (2, 0)]
    assert [by_code[f"150823100{n:03d}"] for n in range(1, 10)] == expected


def test_number_children_refuses_overflow():
    frame = gpd.GeoDataFrame(geometry=[box(i, 0, i + 1, 1) for i in range(11)])
    with pytest.raises(CodeError, match="at most 9"):  # a user's error, not a ValueError
        number_children(frame, pd.Series(["1"] * 11), 1)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=40, unique=True
    )
)
def test_reading_order_is_a_permutation_independent_of_row_order(points):
    from shapely import points as make_points

    pts = gpd.GeoSeries(make_points(np.asarray(points, dtype=float)))
    groups = pd.Series(["a"] * len(points))
    rank = reading_order(pts, groups)
    assert sorted(rank) == list(range(len(points)))
    perm = np.random.default_rng(len(points)).permutation(len(points))
    rank2 = reading_order(pts.iloc[perm].reset_index(drop=True), groups)
    assert (rank2 == rank[perm]).all()
    # Northern points never come after southern ones by more than one band.
    ys = np.asarray(points)[:, 1]
    first, last = np.argmin(rank), np.argmax(rank)
    assert ys[first] >= ys[last] or len(points) == 1


# -- coordinates against the CRS ------------------------------------------------------
def _swap_xy(layers):
    for frame in layers.values():
        frame["geometry"] = shapely.transform(frame.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    return layers


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        # Projected metres labelled CGCS2000 / WGS-84 longitude-latitude.
        (lambda ls: {k: v.to_crs(4545).set_crs(4490, allow_override=True) for k, v in ls.items()},
         "look like metres"),
        (lambda ls: {k: v.to_crs(4545).set_crs(4326, allow_override=True) for k, v in ls.items()},
         "look like metres"),
        (_swap_xy, "latitude and longitude look swapped"),
        # Degrees labelled with a projected CRS.
        (lambda ls: {k: v.set_crs(4545, allow_override=True) for k, v in ls.items()},
         "look like longitude/latitude"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("strict", [True, False])
def test_coordinates_that_cannot_be_in_the_crs_are_refused(mutate, needle, strict):
    layers = mutate(tiny_layers())
    with pytest.raises(CrsError, match=needle) as caught:
        GridSystem.from_layers(layers, origin="t.gpkg", strict=strict)
    message = str(caught.value)
    assert "t.gpkg, layer 'banner'" in message  # names the layer
    assert "EPSG:" in message and "area of use" in message  # the CRS
    assert "span x" in message  # the bounds found


def test_the_constructor_checks_coordinates_too():
    layers = {
        k: v.to_crs(4545).set_crs(4490, allow_override=True) for k, v in tiny_layers().items()
    }
    with pytest.raises(CrsError, match="look like metres"):
        GridSystem(layers, origin="direct")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize("strict", [True, False])
def test_non_finite_or_absurd_coordinates_name_layer_row_and_code(bad, strict):
    layers = tiny_layers()
    layers["grid"].loc[2, "geometry"] = shapely.Polygon(
        [(108.6, 40.75), (bad, 40.8), (108.7, 40.8), (108.7, 40.75)]
    )
    with pytest.raises(GeometryError, match=r"layer 'grid', row 2 \(code 150823101001\)"):
        GridSystem.from_layers(layers, origin="t.gpkg", strict=strict)


def test_a_projected_system_in_its_area_of_use_loads():
    layers = {k: v.to_crs(4545) for k, v in tiny_layers().items()}
    assert GridSystem.from_layers(layers).crs.to_epsg() == 4545


@settings(max_examples=25, deadline=None)
@given(st.floats(74, 134), st.floats(17, 53))
def test_layers_anywhere_in_china_load_and_their_metres_do_not(lon, lat):
    def moved(frame):
        out = frame.copy()
        out["geometry"] = shapely.transform(
            out.geometry.to_numpy(), lambda xy: xy - [108.5, 40.7] + [lon, lat]
        )
        return out

    layers = {k: moved(v) for k, v in tiny_layers().items()}
    GridSystem.from_layers(layers)
    utm = CRS.from_user_input(layers["banner"].estimate_utm_crs())
    metres = {k: v.to_crs(utm).set_crs(4490, allow_override=True) for k, v in layers.items()}
    with pytest.raises(CrsError, match="look like metres"):
        GridSystem.from_layers(metres)


def test_an_empty_top_level_is_refused_an_empty_lower_level_is_not():
    layers = tiny_layers()
    layers["banner"] = layers["banner"].iloc[:0]
    with pytest.raises(LayerError, match="layer 'banner': the layer has no features"):
        GridSystem.from_layers(layers, origin="t.gpkg")
    layers = tiny_layers()
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    assert GridSystem.from_layers(layers).counts()["micro_grid"] == 0


def test_an_empty_full_level_is_refused_strictly_and_warned_leniently():
    layers = tiny_layers()
    layers["grid"] = layers["grid"].iloc[:0]
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    with pytest.raises(LayerError, match=r"t.gpkg: layer\(s\) \['grid'\] have no features"):
        GridSystem.from_layers(layers, origin="t.gpkg")
    with pytest.warns(UserWarning, match=r"\['grid'\] have no features") as caught:
        system = GridSystem.from_layers(layers, strict=False, origin="t.gpkg")
    assert system.empty_levels() == ["grid"] and len(caught) == 1


def test_float_codes_that_are_not_whole_numbers_do_not_crash_the_model():
    """A code column read as floats keeps its whole numbers as digits; 1.5 stays for the checks."""
    layers = tiny_layers()
    layers["town"] = layers["town"].assign(code=layers["town"]["code"].astype(float))
    system = GridSystem.from_layers(layers, origin="t.gpkg")
    assert system["town"]["code"].tolist() == tiny_layers()["town"]["code"].tolist()
    layers["town"].loc[0, "code"] = 1.5
    with pytest.raises(CodeError, match="row 0"):
        GridSystem.from_layers(layers, origin="t.gpkg")
