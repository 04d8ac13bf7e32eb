"""gridgeo.io.tables: encodings, junk, Excel damage, CRS checks, types, streaming, CSV injection."""

from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np
import pandas as pd
import pyogrio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS

from gridgeo.errors import (
    CrsError,
    DataFileError,
    DiskFullError,
    EncodingError,
    SchemaError,
    cli_voice,
)
from gridgeo.io import read_points, write_layer, write_table
from gridgeo.io.tables import iter_points

TRADITIONAL = [
    ("王偉", "臺北市中正區重慶南路一段"),
    ("李芳", "新北市板橋區縣民大道"),
    ("張敏", "高雄市苓雅區四維三路"),
    ("陳淑芬", "臺中市西屯區臺灣大道三段"),
]
SIMPLIFIED = [
    ("王伟", "乌拉山镇瑞泰社区"),
    ("李芳", "西小召镇复胜村"),
    ("张敏", "白彦花镇"),
    ("巴特尔", "额尔登布拉格苏木"),
]


def _csv(path, rows, encoding, header="户主,地址,经度,纬度"):
    lines = [header] + [f"{name},{place},108.63,40.74" for name, place in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _ideographs(first: int, last: int, codec: str) -> list[str]:
    """The characters a double-byte code table holds from byte pair ``first`` to ``last``."""
    chars = []
    for code in range(first, last + 1):
        try:
            char = code.to_bytes(2, "big").decode(codec)
        except UnicodeDecodeError:
            continue
        if "\u4e00" <= char <= "\u9fff":
            chars.append(char)
    return chars


BIG5_LEVEL1 = _ideographs(0xA440, 0xC67E, "cp950")
GB2312_HANZI = _ideographs(0xB0A1, 0xF7FE, "gb2312")


# -- 1. encodings --------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["cp950", "big5"])
def test_big5_csv_is_read_as_big5_not_gb18030_mojibake(tmp_path, encoding):
    path = _csv(tmp_path / "tw.csv", TRADITIONAL, encoding, header="戶主,地址,經度,緯度")
    pts = read_points(path)
    assert list(pts.columns[:4]) == ["戶主", "地址", "經度", "緯度"]
    assert pts["戶主"].tolist() == [name for name, _ in TRADITIONAL]
    assert pts["地址"].tolist() == [place for _, place in TRADITIONAL]
    assert pts["coord_error"].tolist() == [""] * 4


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_utf8_and_gb_csvs_are_still_detected(tmp_path, encoding):
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, encoding)
    pts = read_points(path)
    assert list(pts.columns[:2]) == ["户主", "地址"]  # no BOM glued to the first name
    assert pts["户主"].tolist() == [name for name, _ in SIMPLIFIED]


def test_traditional_text_written_in_gb18030_is_read_as_gb18030(tmp_path):
    path = _csv(tmp_path / "hk.csv", TRADITIONAL, "gb18030")
    assert read_points(path)["地址"].tolist() == [place for _, place in TRADITIONAL]


def test_utf16_unicode_text_from_excel_is_read(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("户主\t经度\t纬度\n王伟\t108.63\t40.74\n".encode("utf-16"))
    pts = read_points(path)
    assert pts["户主"].tolist() == ["王伟"]
    assert pts["经度"].tolist() == [108.63]


def test_undecidable_encoding_asks_for_it_in_the_callers_words(tmp_path):
    # "林" in GB18030 is also a common Big5 character ("輿"): no way to tell.
    path = tmp_path / "tiny.csv"
    path.write_bytes("name,lon,lat\n林,108.6,40.7\n".encode("gb18030"))
    assert "林".encode("gb18030").decode("cp950") == "輿"
    with pytest.raises(EncodingError, match=r"tiny\.csv.*cannot tell") as api:
        read_points(path)
    assert "encoding='big5'" in str(api.value)
    with cli_voice(), pytest.raises(EncodingError) as cli:
        read_points(path)
    assert "--encoding 'big5'" in str(cli.value) and "encoding=" not in str(cli.value)
    assert read_points(path, encoding="gb18030")["name"].tolist() == ["林"]
    assert read_points(path, encoding="big5")["name"].tolist() == ["輿"]


def test_text_in_neither_chinese_encoding_is_refused(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,lon,lat\nMüller,108.6,40.7\nJosé,108.6,40.7\n".encode("latin-1"))
    with pytest.raises(EncodingError, match="encoding='big5'"):
        read_points(path)
    assert read_points(path, encoding="latin-1")["name"].tolist() == ["Müller", "José"]


@pytest.mark.parametrize("bad", ["nonsense", "utf-\x00", ""])
def test_an_unknown_encoding_argument_is_a_named_error(tmp_path, bad):
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, "utf-8")
    with pytest.raises(EncodingError, match=r"hh\.csv.*not a text encoding"):
        read_points(path, encoding=bad)


def test_a_wrong_encoding_argument_is_refused_not_misread(tmp_path):
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, "gb18030")
    with pytest.raises(EncodingError, match=r"hh\.csv.*not valid UTF-8"):
        read_points(path, encoding="utf-8")


def test_invalid_bytes_far_into_a_file_are_an_encoding_error(tmp_path):
    # The detector samples about 1 MiB of Chinese text; a stray byte after it
    # must still stop the strict read instead of turning into U+FFFD.
    rows = "".join(f"王伟{i},108.63,40.74\n" for i in range(120_000))
    path = tmp_path / "long.csv"
    path.write_bytes(b"name,lon,lat\n" + rows.encode("utf-8") + b"\xff\xfe,108.6,40.7\n")
    with pytest.raises(EncodingError, match=r"long\.csv.*not valid UTF-8"):
        read_points(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    encoding=st.sampled_from(["utf-8", "gb18030", "cp950"]),
    data=st.data(),
)
def test_a_table_is_read_exactly_or_refused_never_garbled(tmp_path, encoding, data):
    alphabet = BIG5_LEVEL1 if encoding == "cp950" else GB2312_HANZI
    names = data.draw(
        st.lists(st.text(st.sampled_from(alphabet), min_size=1, max_size=4), min_size=1, max_size=8)
    )
    path = tmp_path / f"names-{encoding}.csv"
    body = "".join(f"{name},108.6,40.7\n" for name in names)
    path.write_bytes(("name,lon,lat\n" + body).encode(encoding))
    try:
        got = read_points(path)["name"].tolist()
    except EncodingError as exc:
        assert "encoding=" in str(exc)
    else:
        assert got == names


def test_realistic_tables_in_every_encoding_are_decided(tmp_path):
    # Common names: every one of these decides, none is refused.
    for encoding, rows in (("cp950", TRADITIONAL), ("gb18030", SIMPLIFIED)):
        for k in range(1, len(rows) + 1):
            path = _csv(
                tmp_path / f"{encoding}{k}.csv", rows[:k], encoding, header="name,addr,lon,lat"
            )
            assert read_points(path)["addr"].tolist() == [p for _, p in rows[:k]]


# -- 2. damaged, empty and disguised files -------------------------------------------------
def test_a_truncated_xlsx_is_a_named_error_saying_to_save_it_again(tmp_path):
    whole = tmp_path / "hh.xlsx"
    pd.DataFrame({"户主": ["王伟"] * 50, "lon": [108.6] * 50, "lat": [40.7] * 50}).to_excel(
        whole, index=False
    )
    raw = whole.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 200):
        broken = tmp_path / f"cut{cut}.xlsx"
        broken.write_bytes(raw[:cut])
        with pytest.raises(DataFileError, match=rf"cut{cut}\.xlsx.*save it again"):
            read_points(broken)


@pytest.mark.parametrize("suffix", [".xls", ".xlsx"])
def test_a_csv_or_web_page_with_an_excel_name_is_named(tmp_path, suffix):
    text = tmp_path / f"export{suffix}"
    text.write_text("户主,经度,纬度\n王伟,108.63,40.74\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"plain text, not an Excel workbook.*Rename it"):
        read_points(text)
    page = tmp_path / f"page{suffix}"
    page.write_text("<html><table><tr><td>户主</td></tr></table></html>", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"web page \(HTML\)"):
        read_points(page)


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx", "empty.txt"])
def test_an_empty_file_is_named(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataFileError, match=r"empty \(0 bytes\)"):
        read_points(path)


def test_a_csv_with_only_a_header_or_blank_lines_is_named(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("户主,经度,纬度\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="column names but no rows"):
        read_points(header)
    with pytest.raises(DataFileError, match="column names but no rows"):
        list(iter_points(header))
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="no header row"):
        read_points(blank)


def test_a_missing_sheet_lists_the_sheets(tmp_path):
    path = tmp_path / "hh.xlsx"
    pd.DataFrame({"lon": [108.6], "lat": [40.7]}).to_excel(path, index=False, sheet_name="户")
    with pytest.raises(DataFileError, match=r"no sheet 'x'.*'户'.*sheet='户'"):
        read_points(path, sheet="x")
    with pytest.raises(DataFileError, match="no sheet 3"):
        read_points(path, sheet=3)


def test_a_ragged_csv_is_a_named_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("lon,lat\n108.6,40.7\n108.6,40.7,1,2\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"ragged\.csv.*as many fields as the header"):
        read_points(path)


# -- 3. a bad crs argument ----------------------------------------------------------------
@pytest.mark.parametrize("crs", ["EPSG:99999", "nonsense", 12.5, ""])
def test_a_bad_crs_is_a_crs_error_saying_how_to_write_one(tmp_path, crs):
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, "utf-8")
    with pytest.raises(CrsError) as api:
        read_points(path, crs=crs)
    assert repr(crs)[:20] in str(api.value) and "crs='EPSG:4490'" in str(api.value)
    with cli_voice(), pytest.raises(CrsError, match="--crs 'EPSG:4490'"):
        iter_points(path, crs=crs)


def test_a_crs_that_is_not_on_the_earth_is_refused(tmp_path):
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, "utf-8")
    local = CRS.from_wkt(
        'ENGCRS["local",EDATUM["x"],CS[Cartesian,2],'
        'AXIS["x",east,LENGTHUNIT["metre",1]],AXIS["y",north,LENGTHUNIT["metre",1]]]'
    )
    with pytest.raises(CrsError, match="not tied to the earth"):
        read_points(path, crs=local.to_wkt())


# -- 4. projected metres read as degrees --------------------------------------------------
def _metres(path, xs, ys):
    body = "".join(f"p{i},{x},{y}\n" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    path.write_text("name,x,y\n" + body, encoding="utf-8")
    return path


def test_a_table_in_metres_with_a_lonlat_crs_is_refused_with_a_crs_hint(tmp_path):
    path = _metres(tmp_path / "m.csv", [500000, 500100, 499900], [4500000, 4500050, 4499950])
    with pytest.raises(CrsError, match=r"look like metres \(x 500000…, y 4500000…") as api:
        read_points(path)
    assert "crs='EPSG:4545'" in str(api.value)
    with cli_voice(), pytest.raises(CrsError, match="--crs 'EPSG:4545'"):
        next(iter_points(path))
    # With the CRS they are in, the same file loads, in metres.
    pts = read_points(path, crs="EPSG:4545")
    assert pts.crs.to_epsg() == 4545 and pts["coord_error"].eq("").all()
    lon, lat = pts.to_crs(4326).geometry.x.iloc[0], pts.to_crs(4326).geometry.y.iloc[0]
    assert abs(lon - 108.0) < 0.01 and 40 < lat < 41


def test_the_hint_names_the_gauss_kruger_zone_written_in_front_of_x(tmp_path):
    path = _metres(tmp_path / "zone.csv", [36500000, 36500100], [4500000, 4500100])
    with pytest.raises(CrsError) as api:
        read_points(path)
    epsg = str(api.value).split("crs='")[1].split("'")[0]
    assert "zone 36" in CRS.from_user_input(epsg).name


def test_a_few_out_of_range_rows_stay_per_row_errors(tmp_path, tiny):
    from gridgeo.assign import assign

    path = _metres(tmp_path / "mixed.csv", [108.55, 108.65, 500000], [40.76, 40.72, 4500000])
    pts = read_points(path)
    assert pts["coord_error"].tolist() == ["", "", ""]
    out = assign(pts, tiny)
    assert out["assign_status"].tolist() == ["inside", "inside", "invalid"]


# -- 5. binary junk and bounded memory ---------------------------------------------------------
def _sparse(path, prefix: bytes, size: int):
    path.write_bytes(prefix)
    os.truncate(path, size)  # a hole: costs no disk
    return path


@pytest.mark.parametrize("prefix_rows", [1, 5_000, 30_000])
def test_a_sparse_file_is_refused_fast_with_bounded_memory_and_a_short_message(
    tmp_path, prefix_rows
):
    # 1 row: NUL in the first bytes; 5,000 rows: NUL found by the encoding scan;
    # 30,000 rows of Chinese (600 kB): NUL found by the guarded reader after the
    # scan has sampled enough text.
    rows = "".join("王伟,108.63,40.74\n" for _ in range(prefix_rows)).encode("utf-8")
    path = _sparse(tmp_path / "sparse.csv", b"name,lon,lat\n" + rows, 400 * 2**20)
    for read in (read_points, lambda p: sum(len(c) for c in iter_points(p, chunksize=10_000))):
        started = time.perf_counter()
        with pytest.raises(DataFileError, match=r"sparse\.csv: byte [\d,]+ is a NUL") as err:
            read(path)
        assert time.perf_counter() - started < 10  # reading 400 MiB would take far longer
        assert len(str(err.value)) < 300
        tracemalloc.start()
        with pytest.raises(DataFileError):
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 32 * 2**20, peak  # the file is 400 MiB


def test_a_huge_header_line_is_refused_and_never_quoted_whole(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(b"a" * (3 * 2**20) + b"\n1\n")
    with pytest.raises(DataFileError, match="first line is longer than 1 MiB") as err:
        read_points(path)
    assert len(str(err.value)) < 400


def test_messages_quote_at_most_80_characters_of_a_header(tmp_path):
    path = tmp_path / "names.csv"
    columns = [f"column_{'x' * 200}_{i}" for i in range(40)]
    path.write_text(",".join(columns) + "\n" + ",".join("1" * 40) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="no longitude column") as err:
        read_points(path)
    assert len(str(err.value)) < 1200 and "… (40 columns)" in str(err.value)


def _big_table(path, rows: int):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "户主": ["王伟"] * rows,
            "code": [f"{i % 1000:04d}" for i in range(rows)],
            "lon": np.round(108.2 + rng.random(rows) * 1.6, 6),
            "lat": np.round(40.5 + rng.random(rows) * 0.7, 6),
        }
    )
    frame.loc[7, "lon"] = np.nan
    frame.to_csv(path, index=False, encoding="gb18030")
    return path


def test_iter_points_streams_with_bounded_memory_and_matches_read_points(tmp_path):
    path = _big_table(tmp_path / "big.csv", 40_000)
    tracemalloc.start()
    sizes, firsts, errors = [], [], []
    for chunk in iter_points(path, chunksize=2_000):
        sizes.append(len(chunk))
        firsts.append(chunk.index[0])
        errors.append(chunk["coord_error"].ne("").sum())
        dtypes = chunk.dtypes.astype(str).to_dict()
    del chunk
    stream_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    whole = read_points(path)
    whole_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sizes == [2_000] * 20 and firsts == list(range(0, 40_000, 2_000))
    assert sum(errors) == 1 and whole["coord_error"].iloc[7] == "missing longitude"
    assert dtypes == whole.dtypes.astype(str).to_dict()
    assert stream_peak * 5 < whole_peak, (stream_peak, whole_peak)
    last = list(iter_points(path, chunksize=15_000))[-1]
    pd.testing.assert_frame_equal(
        pd.DataFrame(last.drop(columns="geometry")),
        pd.DataFrame(whole.iloc[30_000:].drop(columns="geometry")),
    )


def test_iter_points_checks_at_call_time(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        iter_points(tmp_path / "missing.csv")
    path = _csv(tmp_path / "hh.csv", SIMPLIFIED, "utf-8", header="户主,地址,a,b")
    with pytest.raises(SchemaError, match="lon='your column'"):
        iter_points(path)
    with pytest.raises(Exception, match="chunksize"):
        iter_points(path, chunksize=0, lon="a", lat="b")


def test_iter_points_refuses_a_later_value_that_breaks_a_numeric_column(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("id,lon,lat\n1,108.6,40.7\n2,108.6,40.7\n007,108.6,40.7\n", encoding="utf-8")
    chunks = iter_points(path, chunksize=2)
    assert next(chunks)["id"].tolist() == [1, 2]
    with pytest.raises(SchemaError, match=r"'id' holds ints.*data row 3 holds '007'"):
        next(chunks)
    assert read_points(path)["id"].tolist() == ["1", "2", "007"]  # whole table: text


def test_iter_points_hands_out_an_excel_workbook_in_chunks(tmp_path):
    path = tmp_path / "hh.xlsx"
    pd.DataFrame({"lon": [108.6] * 5, "lat": [40.7] * 5, "n": range(5)}).to_excel(path, index=False)
    chunks = list(iter_points(path, chunksize=2))
    assert [c["n"].tolist() for c in chunks] == [[0, 1], [2, 3], [4]]


# -- 6. types -------------------------------------------------------------------------------
TYPED = (
    "name,lon,lat,id,code,idcard,big,share,money,mixed,blank,plus,sci,note\n"
    "王伟,108.63,40.74,1,001,150823199001011234,9007199254740993,0.25,1.50,1,,+5,1e5,a\n"
    "李芳,108.64,40.75,22,002,15082319900101123X,12,-3.5,2.00,2.5,,+6,2e5,\n"
    "张敏, 108.65 ,40.76,-3,010,150823199001015678,7,10,3.00,-4,,7,3e5,b\n"
)


def test_numeric_columns_become_numbers_only_when_every_value_round_trips(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text(TYPED, encoding="utf-8")
    pts = read_points(path)
    kinds = pts.dtypes.astype(str).to_dict()
    assert kinds["lon"] == kinds["lat"] == "float64"
    assert pts["lon"].tolist() == [108.63, 108.64, 108.65]
    assert kinds["id"] == "Int64" and pts["id"].tolist() == [1, 22, -3]
    assert kinds["share"] == "float64" and pts["share"].tolist() == [0.25, -3.5, 10.0]
    assert kinds["mixed"] == "float64" and pts["mixed"].tolist() == [1.0, 2.5, -4.0]
    assert pts["code"].tolist() == ["001", "002", "010"]  # leading zeros kept
    assert pts["idcard"].tolist()[0] == "150823199001011234"  # 18 digits: text
    assert pts["big"].tolist()[0] == "9007199254740993"  # > 2**53: text
    for text_column in ("code", "idcard", "big", "money", "plus", "sci", "note", "name"):
        assert kinds[text_column] == "object", text_column
    assert pts["money"].tolist() == ["1.50", "2.00", "3.00"]


def test_types_survive_into_geopackage_and_parquet(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text(TYPED, encoding="utf-8")
    pts = read_points(path)
    gpkg = pyogrio.read_dataframe(write_layer(pts, tmp_path / "out.gpkg"))
    assert gpkg["id"].tolist() == [1, 22, -3] and str(gpkg["id"].dtype) == "int64"
    assert str(gpkg["lon"].dtype) == "float64" and gpkg["code"].tolist()[0] == "001"
    pts.to_parquet(tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert str(back["id"].dtype) == "Int64" and str(back["share"].dtype) == "float64"


def test_excel_columns_follow_the_same_type_rule(tmp_path):
    path = tmp_path / "typed.xlsx"
    pd.DataFrame(
        {
            "lon": [108.63, 108.64],
            "lat": [40.74, 40.75],
            "id": [1, 2],
            "code": ["001", "002"],
            "share": [0.25, -3.5],
        }
    ).to_excel(path, index=False)
    kinds = read_points(path).dtypes.astype(str).to_dict()
    assert kinds["lon"] == "float64" and kinds["id"] == "Int64"
    assert kinds["code"] == "object" and kinds["share"] == "float64"


# -- 7. CSV injection -----------------------------------------------------------------------
PAYLOADS = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-1+1", "\t=1", "\r=1"]


def test_write_table_neutralises_formulas_in_text_but_keeps_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "name": [*PAYLOADS, "王伟", None],
            "size": [-3.5, 1, 2, 3, 4, 5, 6, -7],
            "status": pd.Categorical(["=cmd|' /C calc'!A0"] * 4 + ["inside"] * 4),
            "=evil": ["x"] * 8,
        }
    )
    path = write_table(frame, tmp_path / "out.csv")
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["name"].tolist() == ["'" + p for p in PAYLOADS] + ["王伟", ""]
    assert back["size"].tolist()[0] == "-3.5" and back["size"].tolist()[-1] == "-7.0"
    assert back["status"].tolist()[0] == "'=cmd|' /C calc'!A0"
    assert "'=evil" in back.columns
    cells = [c for col in back.columns for c in [col, *back[col].tolist()]]
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)
    assert [c for c in cells if c.startswith("-")] == ["-3.5", "-7.0"]


def test_read_then_write_round_trip_keeps_negative_numbers_as_numbers(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("name,lon,lat,delta\n-1+1,108.6,40.7,-3.5\n", encoding="utf-8")
    out = write_table(read_points(path), tmp_path / "out.csv")
    row = out.read_text(encoding="utf-8-sig").splitlines()[1]
    assert row.startswith("'-1+1,108.6,40.7,-3.5,")


# -- 8. a full disk ----------------------------------------------------------------------
def test_write_table_on_a_full_disk_is_a_named_error_and_keeps_the_old_file(tmpfs):
    mount = tmpfs("256k")
    target = mount / "out.csv"
    write_table(pd.DataFrame({"a": [1]}), target)
    old = target.read_bytes()
    big = pd.DataFrame({"name": ["王伟" * 20] * 20_000})
    with pytest.raises(DiskFullError, match=r"out\.csv: the disk is full"):
        write_table(big, target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in mount.iterdir()) == ["out.csv"]


# -- 9. messages ------------------------------------------------------------------------
def test_an_unknown_suffix_lists_every_accepted_one(tmp_path):
    path = tmp_path / "hh.ods"
    path.write_bytes(b"x")
    with pytest.raises(DataFileError) as err:
        read_points(path)
    for suffix in (".csv", ".txt", ".xlsx", ".xls", ".shp", ".gpkg", ".parquet", ".geojson"):
        assert suffix in str(err.value)
    with pytest.raises(DataFileError, match=r"writes \.csv files.*write_layer"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")


def test_column_hints_name_the_option_in_the_callers_words(tmp_path):
    path = tmp_path / "ab.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="lon='your column'"):
        read_points(path)
    with cli_voice(), pytest.raises(SchemaError, match="--lon 'your column'"):
        read_points(path)
    with cli_voice(), pytest.raises(SchemaError, match="--lat 'your column'"):
        read_points(path, lon="a", lat="c")
