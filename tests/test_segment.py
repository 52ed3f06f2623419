"""Cleaning and segmentation, on real passages from the seed articles."""

import re
from collections import Counter

import pytest

from mineral_stance.corpus import seed_paths, segment_file
from mineral_stance.segment import segment_text


def texts(units, kind=None):
    return [u.text for u in units if kind is None or u.kind == kind]


def test_sentence_broken_across_blank_line_is_joined():
    # minmetals-alliance-future: "美中" / blank line / "之间的下一个战场。"
    source = (
        "标题在这里\n\n摩根大通在今年6月10日发布的报告称,中国2022年生产了全球68%的稀土,"
        "关键矿产可能成为美中\n\n之间的下一个战场。\n\n随着中国新能源产业的快速崛起,美国的战略焦虑日益加剧。\n"
    )
    units = segment_text(source, "doc")
    assert (
        "摩根大通在今年6月10日发布的报告称,中国2022年生产了全球68%的稀土,关键矿产可能成为美中之间的下一个战场。"
        in texts(units, "body")
    )


def test_spaces_between_chinese_characters_are_removed():
    source = "题目\n\n结盟对抗是美国维护全球霸权的核心战略手段,而关键 矿产联盟则是美国众多联盟关系的重要组成和最新战略方 向。\n"
    body = texts(segment_text(source, "doc"), "body")
    assert body == [
        "结盟对抗是美国维护全球霸权的核心战略手段,而关键矿产联盟则是美国众多联盟关系的重要组成和最新战略方向。"
    ]


def test_spaces_between_chinese_and_numbers_are_kept():
    source = "題目\n亞太地區是所有這些行業的核心:據估計,全球 70% 的礦業產出是在亞太經合組織經濟體內生產和消費的。\n"
    assert "全球 70% 的礦業產出" in texts(segment_text(source, "doc"), "body")[0]


def test_english_word_hyphenated_across_lines_is_rejoined():
    source = (
        "题目\n\n（责任编辑：石刚）\n\nAbstract: Recent years have wit-\n\n"
        "nessed notable progress in the global green transition. Correspondingly, the supply matters.\n"
    )
    body = texts(segment_text(source, "doc"), "body")
    assert (
        body[0]
        == "Abstract: Recent years have witnessed notable progress in the global green transition."
    )
    assert body[1] == "Correspondingly, the supply matters."


def test_footnote_markers_are_removed_and_footnote_bodies_kept_as_footnotes():
    source = (
        "美国关键矿产安全联盟探析^{*}\n\n"
        "随着全球能源转型不断推进，美国持续增强自身关键矿产供应链韧性，^①并在战略推行中持续强\n\n"
        "^{*} 本文是中国社会科学院青年科研启动项目的阶段性研究成果。\n\n"
        "^① 王永中、万军、陈震：《能源转型背景下关键矿产博弈与中国供应安全》，《国际经济评论》，2023年第6期。\n\n"
        "调“全政府”路径与私营部门积极性的有机结合。^①鉴于对华依赖程度较高,拜登政府将中国看作主要防范对象。\n"
    )
    units = segment_text(source, "doc")
    assert texts(units, "heading") == ["美国关键矿产安全联盟探析"]
    body = texts(units, "body")
    assert (
        body[0]
        == "随着全球能源转型不断推进，美国持续增强自身关键矿产供应链韧性，并在战略推行中持续强调“全政府”路径与私营部门积极性的有机结合。"
    )
    assert body[1] == "鉴于对华依赖程度较高,拜登政府将中国看作主要防范对象。"
    assert len(texts(units, "footnote")) == 2
    assert not any("^" in t for t in texts(units))


def test_table_rows_captions_and_source_notes():
    source = (
        "题目\n\n表1 美国关键矿产盟伴体系\n\n类型\t名称\t缩写\t建立时间\n双边机制\t美欧能源理事会\tEC\t2009\n\n"
        "资料来源：作者自制。\n\n美国唯一的稀土矿位于加利福尼亚州的芒廷帕斯。图源:Wikimedia Commons\n\n"
        "重要稀有金屬鎵(左)和銻\n"
    )
    kinds = Counter(u.kind for u in segment_text(source, "doc"))
    assert kinds["table"] == 2
    assert kinds["caption"] == 4


def test_bylines_credits_and_related_links_are_boilerplate():
    source = (
        "應對中國關鍵礦產管制,“特朗普預計將加大力度確保供應”\n阮佳琪睡不够 玻璃心 脾气冲\n【文/觀察者網 阮佳琪】\n"
        "港媒《南華早報》28日報道稱,美國總統拜登離任之際留下了一個國家安全挑戰。\n"
        "本文系觀察者網獨家稿件,未經授權,不得轉載。\n"
        "破碎的经济秩序——如何在特朗普时代重构国际体系|IPP全球智库纵览\n"
    )
    units = segment_text(source, "doc")
    assert [u.kind for u in units] == [
        "heading",
        "boilerplate",
        "boilerplate",
        "body",
        "boilerplate",
        "boilerplate",
    ]


def test_chinese_sentences_split_at_terminals_but_not_semicolons():
    source = "题目\n例如，中国稀土开采量占全球比重达到62%；中国是最大生产国。美国呢？这是问题！\n"
    assert texts(segment_text(source, "doc"), "body") == [
        "例如，中国稀土开采量占全球比重达到62%；中国是最大生产国。",
        "美国呢？",
        "这是问题！",
    ]


def test_english_sentences_respect_abbreviations_and_decimals():
    source = (
        "Title Here\n\nAbstract: The U.S. International Development Finance Corporation funds mines. "
        "Demand may rise 1.5 times by 2040. Erin L. Murphy agrees.\n"
    )
    assert texts(segment_text(source, "doc"), "body") == [
        "Abstract: The U.S. International Development Finance Corporation funds mines.",
        "Demand may rise 1.5 times by 2040.",
        "Erin L. Murphy agrees.",
    ]


def test_closing_quote_stays_with_its_sentence():
    source = "題目\n他也直言,“美國很難在這樣的領域完全自力更生。”這是現實。\n"
    assert texts(segment_text(source, "doc"), "body") == [
        "他也直言,“美國很難在這樣的領域完全自力更生。”",
        "這是現實。",
    ]


@pytest.fixture(scope="module")
def seed_units():
    return {path: segment_file(path) for path in seed_paths()}


def test_offsets_point_into_the_source(seed_units):
    for path, units in seed_units.items():
        source = path.read_text(encoding="utf-8")
        for unit in units:
            assert source[unit.start] == unit.text[0], unit
            assert source[unit.end - 1] == unit.text[-1], unit


def test_nothing_is_silently_dropped(seed_units):
    """Every visible character of a seed is in some unit, except footnote markers and the
    hyphens of English words rejoined across a line break."""
    for path, units in seed_units.items():
        source = path.read_text(encoding="utf-8")
        markers = re.compile(r"\^\{\*\}|\^[①-⑳]")  # the seeds' two marker styles
        source = re.sub(r"-\s*\n\s*(?=[a-z])", "", markers.sub("", source))
        expected = Counter(re.sub(r"\s", "", source))
        found = Counter(re.sub(r"\s", "", "".join(u.text for u in units)))
        assert found == expected, path.name


def test_every_seed_has_body_sentences_and_sequential_indices(seed_units):
    for units in seed_units.values():
        assert [u.index for u in units] == list(range(len(units)))
        assert sum(u.kind == "body" for u in units) >= 40
        assert len({u.id for u in units}) == len(units)


def test_seed_kinds_cover_the_artefacts(seed_units):
    kinds = Counter(u.kind for units in seed_units.values() for u in units)
    for kind in ("body", "heading", "caption", "footnote", "table", "boilerplate"):
        assert kinds[kind] > 0, kind
    english = [u for units in seed_units.values() for u in units if u.text.startswith("Abstract:")]
    assert len(english) == 3 and all(u.kind == "body" for u in english)


def test_footnote_marker_does_not_swallow_a_following_year():
    source = (
        "题目\n强调了其对能源转型与安全的重要意义。^④2022年至2023年期间，国际能源署启动项目。\n"
    )
    assert texts(segment_text(source, "doc"), "body") == [
        "强调了其对能源转型与安全的重要意义。",
        "2022年至2023年期间，国际能源署启动项目。",
    ]


def test_straight_quote_opening_the_next_sentence_is_not_a_closer():
    source = '题目\n潜在加入者还有智利。"金砖+"目前占据着全球主导地位。他说:"好。"然后走了。\n'
    assert texts(segment_text(source, "doc"), "body") == [
        "潜在加入者还有智利。",
        '"金砖+"目前占据着全球主导地位。',
        '他说:"好。"',
        "然后走了。",
    ]


# --- 12. linear time, whatever the whitespace ---------------------------------------


class CountingList(list):
    """A list that counts the items copied out by slicing."""

    copied = 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            CountingList.copied += len(range(*key.indices(len(self))))
        return super().__getitem__(key)


def test_squeezing_spaces_copies_nothing_per_space():
    """The old loop copied the rest of the paragraph at every space: quadratic."""
    from mineral_stance.segment import _squeeze_spaces

    chars = CountingList("美 国 应 与 盟 友 合 作 . the  U.S.   and allies " * 200)
    CountingList.copied = 0
    text, offsets = _squeeze_spaces(chars, list(range(len(chars))))
    assert CountingList.copied <= len(chars)
    assert text.startswith("美国应与盟友合作 . the U.S. and allies 美国应")
    assert len(offsets) == len(text)


def test_a_megabyte_paragraph_full_of_spaces_keeps_its_offsets():
    paragraph = " ".join("中 国 生 产 全 球 约 60% 的 稀 土 , and the U.S. imports most of it" for _ in range(14000))
    text = "标题\n" + paragraph + "。\n"  # one line of over a megabyte, 30 spaces a sentence
    units = segment_text(text, "big")
    assert len(text.encode("utf-8")) > 1_000_000
    for unit in units:
        assert text[unit.start] == unit.text[0] and text[unit.end - 1] == unit.text[-1]
    assert units[1].text.startswith("中国生产全球约 60% 的稀土 , and the U.S. imports most of it 中国生产")


def test_a_long_title_case_line_does_not_backtrack_for_ever():
    line = " ".join(["Critical Minerals Security Partnership Members"] * 40) + " met."
    units = segment_text(f"Title\n{line}\n", "names")
    assert [u.kind for u in units] == ["heading", "body"]


def test_a_long_run_of_abbreviation_dots_is_one_pass():
    text = "Title\n" + "a." * 200_000 + " End of it.\n"
    units = segment_text(text, "dots")
    assert "".join(u.text for u in units).replace(" ", "") == text.replace("\n", "").replace(" ", "")


# --- property: any text segments, offsets always point into it -----------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEGMENT_ALPHABET = st.sampled_from(
    list("美国应与盟友合作。！？，：；“”（）《》中國") + list("ab.!? -\t\n\r^①{}*:") + ["\u3000", "\u2028", "\x85", "\x0c"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.text(SEGMENT_ALPHABET, max_size=400)))
def test_any_text_segments_with_offsets_into_it(text):
    units = segment_text(text, "fuzz")
    assert [u.index for u in units] == list(range(len(units)))
    for unit in units:
        assert unit.text and not unit.text.isspace()
        assert 0 <= unit.start < unit.end <= len(text)
        assert text[unit.start] == unit.text[0] and text[unit.end - 1] == unit.text[-1]


def test_abbreviation_file_equals_what_spacy_gives():
    """The segmenter reads spaCy's English abbreviations from a data file (no spaCy import
    at run time); regenerated from spaCy here, so the file cannot drift from it."""
    from mineral_stance.segment import (
        EXTRA_ABBREVIATIONS,
        english_abbreviations,
        spacy_abbreviations,
    )

    assert english_abbreviations() == spacy_abbreviations() | EXTRA_ABBREVIATIONS
    assert "a.m" in english_abbreviations() and "dr" in english_abbreviations()
