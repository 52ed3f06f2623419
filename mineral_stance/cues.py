"""Transparent textual cues: the patterns the label schema itself names.

The schema defines a recommendation by its normative modals (应, 应该, 必须,
需要, should, must ...), a statistic by numeric quantities (percentages,
money, tonnes, counts with a measure word) that are not dates or
identifiers, and reported voice by attribution. Each cue below is one such
pattern, written from the schema's wording, in Simplified and Traditional
characters and English.

The cues serve twice: the rules baseline decides with them alone, and the
fine-tuned model reads them beside the sentence vector (a handful of 0/1
inputs to its heads), so it can learn when a modal really prescribes and
when 需要 merely describes a need. They are fixed code, never fitted to the
gold labels.
"""

from __future__ import annotations

import re

import numpy as np

# A modal "应/應" prescribes; inside words such as 供应 (supply), 响应 (respond),
# 适应 (adapt) or 应对 (cope with) it does not.
_YING_WORD_BEFORE = "供响反适相效对回感呼答顺理因"
_YING_WORD_BEFORE_TRAD = "供響反適相效對回感呼答順理因"
_YING_WORD_AFTER = "对對用急变變聘邀征徵運运"

NORMATIVE = re.compile(
    r"应当|應當|应该|應該|必须|必須|亟需|亟須|亟待|务必|務必|需要|須要|有必要|建议|建議|呼吁|呼籲"
    rf"|(?<![{_YING_WORD_BEFORE}{_YING_WORD_BEFORE_TRAD}])[应應](?![{_YING_WORD_AFTER}])"
    r"|\bshould\b|\bmust\b|\bneeds? to\b|\bought to\b|\brecommend",
    re.IGNORECASE,
)
# weaker prescriptions: "can / could do X" in a policy argument
PERMISSIVE = re.compile(r"可以|可望|不妨|不能只|\bcould\b|\bcan\b", re.IGNORECASE)
# predictions are not prescriptions (schema: 将, 预计, 可能 without a prescription)
PREDICTION = re.compile(r"将|將|预计|預計|可能|恐|或将|或將|\bwill\b|\blikely\b", re.IGNORECASE)

_MEASURE = (
    r"%|％|倍|亿|億|万|萬|千|百|美元|欧元|歐元|人民币|人民幣|元|吨|噸|公斤|千克|桶|兆瓦|吉瓦"
    r"|种|種|个|個|家|项|項|份|名|位|座|国|國|多|余|餘|以上|批|处|處|架|艘|辆|輛"
)
# Counts written in Chinese numerals: 五种矿产, 十四国, 三家机构, 七份意向书. A lone 一
# (一个, 一项: "a") and 两国 ("both countries") are articles, not counts; 第三个 is an
# ordinal, 三个月 a duration, and 七国集团, 七国联盟, 中亚五国 (C5+1) are names.
_CN_NUMERAL = "一二三四五六七八九十百千两兩"
_COUNT_WORD = "种種个個国國家项項份名位座批处處架艘辆輛枚颗顆条條所"
_CN_COUNT = (
    rf"(?<![第{_CN_NUMERAL}])(?<!中亚)(?<!中亞)"
    rf"(?:[{_CN_NUMERAL}]{{2,}}|[三四五六七八九十百千]|[两兩](?![国國]))"
    rf"[{_COUNT_WORD}](?!月|小时|小時|集团|集團|联盟|聯盟|峰会|峰會|机制|機制|\+)"
)
# Counts in English words or digits before a counted noun: "14 member countries",
# "seven critical rare earth elements", "two dozen"; not "the two countries" (an
# article), not a year ("2025 critical minerals"), not G7 or C5+1 (names).
_EN_NUMBER_WORD = (
    r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|hundreds|thousands|dozens"
)
_EN_COUNTED = (
    r"countries|nations|members|partners|minerals|elements|metals|companies|firms|projects"
    r"|mines|states|economies|governments|agreements|deals|deposits|refineries|plants"
)
_EN_COUNT = (
    rf"(?<!the )(?<!these )(?<!those )(?<!both )(?<!group of )\b(?:{_EN_NUMBER_WORD})"
    rf"\s+(?:[a-z-]+\s+){{0,3}}?(?:{_EN_COUNTED})\b"
    r"|\b(?:a|two|three|several|half a) dozen\b"
    rf"|(?<![A-Za-z\d.,+])(?!(?:19|20)\d\d\b)\d[\d,.]*\s+(?:[a-z-]+\s+){{0,3}}?(?:{_EN_COUNTED})\b"
)
QUANTITY = re.compile(
    rf"\d+(?:[.,]\d+)*\s*(?:{_MEASURE})"
    r"|\d+\s*/\s*\d+|分之|百分点|百分點"
    # 七成 (70%) and 三倍 are quantities; 一个/两国 are mostly articles, not counts
    r"|[一二三四五六七八九十两兩几幾]+(?:倍|成(?![为為员員果功立本]))"
    r"|\d[\d,.]*\s*(?:percent|per cent|billion|million|thousand|tons?|tonnes?)"
    rf"|{_CN_COUNT}|{_EN_COUNT}"
    r"|\$\s*\d",
    re.IGNORECASE,
)
# any digit at all, so the model can tell a year or an identifier from a quantity
DIGIT = re.compile(r"\d|[一二三四五六七八九十百千万亿]{2,}")
THREAT = re.compile(
    r"风险|風險|威胁|威脅|胁迫|脅迫|脆弱|危险|危險|卡脖子|打压|打壓|遏华|遏華|遏制|围堵|圍堵|"
    r"危机|危機|焦虑|焦慮|损失|損失|损害|損害|危害|攻击|攻擊|武器化|排华|排華|对抗|對抗|"
    r"重创|重創|冲击|衝擊|断供|斷供|阿喀琉斯之踵|"
    r"\brisk|threat|coercion|vulnerab|containment|crisis|weaponi|attack|damag|anxiety",
    re.IGNORECASE,
)
ALLIANCE = re.compile(
    r"矿产安全伙伴关系|礦產安全夥伴關係|MSP|金属北约|金屬北約|友岸外包|友岸|盟友|盟伴|联盟|聯盟|"
    r"伙伴|夥伴|盟国|盟國|同盟|Quad|四边|四邊|七国集团|七國集團|G7|"
    r"\bally|allies|alliance|partnership|friend-?shoring",
    re.IGNORECASE,
)
DISPARAGING = re.compile(
    r"排华|排華|遏华|遏華|霸权|霸權|所谓|所謂|私利|拉帮结派|拉幫結派|去中国化|去中國化|围堵|圍堵|"
    r"悖论|悖論|难圆|難圓|打压|打壓|炒作|渲染|肆意|歪曲|零和|冷战|冷戰|"
    r"containment|anti-China",
    re.IGNORECASE,
)
# 据 and 称 also sit inside words that report nothing: 数据 (data), 占据, 名称, 称为.
# 说 reports in 他说, 官员说; not in 可以说, 比如说, 就是说, 换句话说, 一般来说, 小说 (novel),
# 学说 (doctrine), 游说 (lobby), nor in 说明 (explain), 说服 (persuade), 说法 (a version).
_SHUO = r"(?<![以如是话話来來小学學游遊传傳])[说說](?![明服法])"
REPORTING = re.compile(
    r"表示|指出|认为|認為|(?<![名简簡对對堪])[称稱](?![为為作之])|强调|強調|警告|透露|"
    r"(?<![数數依证證占佔盘盤])[据據]|援引|引述|转述|轉述|报道|報道|报导|報導|坦言|直言|"
    r"报告显示|報告顯示|宣称|宣稱|声明|聲明|呼吁|呼籲|主张|主張|表态|表態|告诉|告訴|"
    r"写道|寫道|撰文|发文|發文|" + _SHUO + "|"
    r"\bsaid\b|\bsays\b|\bsay\b|according to|\bstated\b|\btold\b|\bwrote\b|\bwrites\b"
    r"|\bargu(?:e|es|ed|ing)\b|\bwarn(?:s|ed|ing)?\b|\bcontend(?:s|ed|ing)?\b"
    r"|\bclaim(?:s|ed)? that\b|\bclaimed\b|\binsist(?:s|ed)?\b|\bnoted\b"
    r"|\bpoint(?:s|ed)? out\b|\bbelieves?\b|\bmaintain(?:s|ed)? that\b|\backnowledged\b",
    re.IGNORECASE,
)
QUOTATION = re.compile(r"“[^”]{8,}”|「[^」]{8,}」|\"[^\"]{8,}\"")

CUES: dict[str, re.Pattern] = {
    "normative_modal": NORMATIVE,
    "permissive_modal": PERMISSIVE,
    "prediction": PREDICTION,
    "quantity": QUANTITY,
    "digit": DIGIT,
    "threat_lexicon": THREAT,
    "alliance_term": ALLIANCE,
    "disparaging_term": DISPARAGING,
    "reporting_verb": REPORTING,
    "long_quotation": QUOTATION,
}
CUE_NAMES: tuple[str, ...] = tuple(CUES)


def cue_features(texts: list[str], names: tuple[str, ...] | list[str] = CUE_NAMES) -> np.ndarray:
    """One row per text, one 0/1 column per named cue (in the order given)."""
    unknown = [name for name in names if name not in CUES]
    if unknown:
        raise ValueError(f"unknown text cues: {', '.join(unknown)} (known: {', '.join(CUES)})")
    patterns = [CUES[name] for name in names]
    return np.array(
        [[1.0 if pattern.search(text) else 0.0 for pattern in patterns] for text in texts],
        dtype=np.float32,
    ).reshape(len(texts), len(patterns))
