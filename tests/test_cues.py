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


# Real sentences: the seed gold (annotations/gold.jsonl) and English corpus articles.
@pytest.mark.parametrize(
    "text",
    [
        "2019年6月,美、英、加、澳、新五国启动关键矿产联合行动计划,打造\"安全且有弹性\"关键矿产供应链。",
        "此外,美國進出口銀行正在發出七份意向書,旨在投資關鍵礦產和供應鏈安全項目。",
        "早在2019年，美国地质调查局（USGS）、澳大利亚地球科学局（GA）、加拿大地质调查局（GSC）三家机构就共同创建“关键矿产测绘倡议”。",
        "与此同时，美国、英国、德国、加拿大、澳大利亚、法国、日本等七国于2022年12月发起可持续关键矿产安全联盟（SCMA）。",
        "中方宣布对五种矿产实施出口管制。",
        "十四国领导人同意启动一个对话渠道。",
        "2023年，“印太”经济框架14个成员国领导人同意启动一个对话渠道。",
        "China's export restrictions on seven critical rare earth elements threaten U.S. defense.",
        "IPEF's 14 member countries agreed to open a dialogue on critical minerals.",
        "Two dozen countries have joined the partnership.",
    ],
)
def test_counts_in_numerals_and_words_are_quantities(text):
    assert "quantity" in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        # names with numbers: the G7, SCMA's Chinese name, C5+1
        "2022年12月,美国携手加、澳、法、德、英、日组建\"可持续关键矿产七国联盟\"(SCMA)。",
        "七国集团峰会发表联合声明。",
        "美国在“中亚五国+美国”(C5+1)机制下设立了关键矿产对话机制。",
        "G7 countries agreed on a critical minerals action plan.",
        # an ordinal, a duration, "both countries", "a"
        "澳大利亚需将关键矿产打造成AUKUS第三支柱。",
        "美國和澳大利亞計劃在未來六個月內向關鍵礦產項目投資。",
        "It forms part of several agreements between the two countries.",
        "政府实验室和大学正在孵化一批专注于关键材料回收与提取革命性工艺的初创企业。",
    ],
)
def test_names_ordinals_durations_are_not_counts(text):
    assert "quantity" not in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "Experts warn the truce remains fragile despite easing immediate trade tensions.",
        "“There was a lot of pressure not to sell to China,” Tony Sage, CEO of Critical Metals, told Reuters.",
        "Prices for antimony trioxide in Rotterdam have surged 228% this year, according to Argus.",
        "Critics argue that the partnership serves Washington's interests first.",
        "Beijing contends that the alliance is a form of containment.",
        "Others say the deal will take a decade to matter.",
        "2024年4月，加拿大前财政部长弗里兰（Chrystia Freeland）宣称，“五眼联盟”国家正通过协作对抗倾销。",
        "10月，华盛顿内部人士透露称，美国计划设立一支基金募资逾10亿美元。",
        "美国《华尔街日报》今年5月报道援引案例表示,过去几年西方一直试图打破中国对矿产的控制。",
        "外交部发言人指称美方拉帮结派。",
        "他也直言,無論特朗普將採取何種措施加速國內生產,美國很難完全自力更生。",
        "一位美国官员说，该伙伴关系旨在建立多元、可靠的供应链。",
    ],
)
def test_reporting_verbs_in_both_languages(text):
    assert "reporting_verb" in cues_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "可以说，关键矿产已成为大国竞争的焦点。",
        "这说明美国的供应链仍然脆弱。",
        "The company holds mining claims in Nevada.",
        "这些数据来自美国地质调查局。",
    ],
)
def test_words_that_only_look_like_reporting(text):
    assert "reporting_verb" not in cues_of(text)
