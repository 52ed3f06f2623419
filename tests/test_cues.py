"""The schema's textual cues, checked on seed-article sentences and their traps."""

import numpy as np
import pytest

from mineral_stance.cues import CUE_NAMES, cue_features


def cues_of(text: str) -> set[str]:
    row = cue_features([text])[0]
    return {name for name, value in zip(CUE_NAMES, row, strict=True) if value}


@pytest.mark.parametrize(
    "text",
    [
        "美国及其志同道合的国家应携手合作,确保供应链安全。",
        "美國及其合作夥伴和盟友應該在這些問題上開展合作。",
        "短期内,国会应考虑至少拨款135亿美元来填补这一资金缺口。",
        "The United States must build a stockpile.",
    ],
)
def test_normative_modals_are_found(text):
    assert "normative_modal" in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "MSP是一項旨在增強全球關鍵礦產供應鏈韌性的多邊倡議。",  # 供應 is supply, not "should"
        "尽管美国政府近年来采取了一系列应对举措。",  # 应对: to cope with
        "这也得到私营部门的积极响应。",
    ],
)
def test_supply_and_respond_are_not_modals(text):
    assert "normative_modal" not in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "中國一直供應美國54%的鍺,53%的鎵。",
        "非洲拥有全球约1/3矿产资源。",
        "国会应考虑至少拨款135亿美元。",
        "中国加工了全球七成的稀土。",
    ],
)
def test_quantities_are_found(text):
    assert "quantity" in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "MSP是一個潛在的合作領域。",  # 一個 is an article, not a count
        "2017年,特朗普签发第13817号行政命令。",  # a year and an identifier
        "2023年5月，两国签署协定。",
    ],
)
def test_dates_identifiers_and_articles_are_not_quantities(text):
    assert "quantity" not in cues_of(text)


def test_reporting_verbs_but_not_data_or_names():
    assert "reporting_verb" in cues_of(
        "美國智庫戰略與國際問題研究中心(CSIS)指出,新措施包含幾個首次。"
    )
    assert "reporting_verb" in cues_of("據港媒報道,特朗普承諾解除禁令。")
    assert "reporting_verb" not in cues_of("这些数据来自美国地质调查局。")
    assert "reporting_verb" not in cues_of("该机构名称为金属储备公司。")


def test_feature_matrix_shape_order_and_unknown_names():
    features = cue_features(
        ["美国应与盟友合作。", "无关的句子"], ["alliance_term", "normative_modal"]
    )
    assert features.dtype == np.float32
    assert features.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert cue_features([]).shape == (0, len(CUE_NAMES))
    with pytest.raises(ValueError, match="unknown text cues: sarcasm"):
        cue_features(["x"], ["sarcasm"])
