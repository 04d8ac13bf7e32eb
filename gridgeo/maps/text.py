"""What the coverage map says, in Chinese and English.

Level names are not here: they come from the grid system's
:class:`~gridgeo.config.GridConfig` (``label_zh``, ``label_en``), so a
system with other levels gets its own words.
"""

from __future__ import annotations

__all__ = ["DEFECT_KINDS", "LANGUAGES", "SEVERITIES", "TEXT"]

TEXT: dict[str, dict] = {
    "zh": {
        "title": "{root}网格覆盖图",
        "households": "住户热力",
        "incidents": "事件热力",
        "open": "未结事件",
        "defects": "检查发现的问题",
        "code": "编码",
        "name": "名称",
        "leader": "网格长",
        "workers": "网格员",
        "households_n": "户数",
        "residents": "人口",
        "search": "搜索网格编码或名称",
        "fullscreen": "全屏",
        "severity": "严重程度",
        "gcj02": "注：图层已转换为GCJ-02坐标以对齐底图",
        "views": {
            "households_per_worker": "每名网格员户数",
            "norm": "户数与300–500户标准",
            "incidents_per_1000": "每千人事件数",
            "open_overdue": "未结与超期事件",
        },
        "norm": {"below": "低于标准", "within": "符合标准", "above": "高于标准", "n/a": "不适用"},
        "status": "状态",
        "statuses": {
            "reported": "已上报",
            "dispatched": "已派遣",
            "handled": "已处置",
            "closed": "已结案",
            "overdue": "超期",
        },
        "kind": "类型",
        "message": "说明",
    },
    "en": {
        "title": "{root} grid coverage",
        "untitled": "Grid coverage ({code})",
        "households": "Households (heat)",
        "incidents": "Incidents (heat)",
        "open": "Open incidents",
        "defects": "Defects found by the check",
        "code": "Code",
        "name": "Name",
        "leader": "Grid leader",
        "workers": "Grid workers",
        "households_n": "Households",
        "residents": "Residents",
        "search": "Search grid code or name",
        "fullscreen": "Full screen",
        "severity": "Severity",
        "gcj02": "Note: layers shifted to GCJ-02 to line up with the base map",
        "views": {
            "households_per_worker": "Households per grid worker",
            "norm": "Households against the 300–500 norm",
            "incidents_per_1000": "Incidents per 1,000 residents",
            "open_overdue": "Open and overdue incidents",
        },
        "norm": {"below": "below", "within": "within", "above": "above", "n/a": "n/a"},
        "status": "Status",
        "statuses": {
            "reported": "reported",
            "dispatched": "dispatched",
            "handled": "handled",
            "closed": "closed",
            "overdue": "overdue",
        },
        "kind": "Kind",
        "message": "Message",
    },
}

LANGUAGES = tuple(TEXT)

# Name of each defect kind of :data:`gridgeo.defects.KINDS` (zh, en); a kind
# missing here is shown by its key.
DEFECT_KINDS: dict[str, tuple[str, str]] = {
    "invalid_geometry": ("几何无效", "invalid geometry"),
    "empty_geometry": ("几何为空", "empty geometry"),
    "not_polygon": ("非面要素", "not a polygon"),
    "duplicate_code": ("编码重复", "duplicate code"),
    "bad_code": ("编码不合规", "malformed code"),
    "orphan": ("上级不存在", "missing parent"),
    "gap": ("覆盖缺口", "gap"),
    "overlap": ("重叠", "overlap"),
    "sliver": ("细缝", "sliver"),
    "outside_parent": ("超出上级", "outside its parent"),
    "multipart": ("多块不相连", "falls apart"),
    "island": ("孤立网格", "island"),
    "edge_mismatch": ("公共边界不一致", "edge mismatch"),
    "repair_hole": ("修复产生的空洞", "repair hole"),
    "source_split": ("来源网格被拆分", "source grid split"),
    "source_mismatch": ("来源图层不一致", "source layers disagree"),
    "displacement": ("边界偏移", "boundary displacement"),
    "digitising_noise": ("数字化误差", "digitising noise"),
}

SEVERITIES: dict[str, tuple[str, str]] = {
    "error": ("错误", "errors"),
    "warning": ("警告", "warnings"),
    "info": ("提示", "info"),
}
