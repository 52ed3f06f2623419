"""Read article files (any common Chinese encoding) and turn them into sentence units."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from mineral_stance.articles import ArticleFileError, read_article_file
from mineral_stance.config import SEEDS_DIR
from mineral_stance.segment import Unit, segment_text

# Encodings that Chinese commentary actually arrives in. UTF-8 wins whenever it
# decodes; otherwise every legacy candidate that decodes is scored by how common
# its Chinese characters are (short GBK and Big5 texts decode as each other's
# mojibake without an error), and the best one wins, ties going to the earlier.
# Big5-HKSCS covers Hong Kong characters (e.g. 着) that plain Big5 lacks.
LIKELY_ENCODINGS = ("utf-8", "gb18030", "big5", "big5hkscs")
# A legacy decoding must have at least this share of common characters.
MIN_COMMON_SHARE = 0.3


class InputError(ValueError):
    """A file that cannot be read as an article; the message names the file."""


@dataclass
class Article:
    """One decoded article: its identifier, source path and text."""

    doc_id: str
    text: str
    source: str


def decode_bytes(data: bytes, source: str) -> str:
    """Decode UTF-8 (with or without BOM), UTF-16 (with BOM), GB18030/GBK or Big5.

    Refuses empty input, binary data (NUL bytes) and bytes no candidate decodes;
    every error is an ``InputError`` whose message starts with ``source``.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _strict(data, "utf-16", source)
    elif data.startswith(b"\xef\xbb\xbf"):
        text = _strict(data[3:], "utf-8", source)
    else:
        if b"\x00" in data[:4096]:
            raise InputError(f"{source}: looks like a binary file (NUL bytes), not text")
        text = _guess(data, source) if data.strip() else ""
    if not text.strip():
        raise InputError(f"{source}: the file is empty")
    return text


def _strict(data: bytes, encoding: str, source: str) -> str:
    """Decode a file whose BOM names its encoding; a bad byte is an error with its line."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{source}: invalid {encoding} at line {line} despite its BOM") from None


def _guess(data: bytes, source: str) -> str:
    """UTF-8 if it decodes, else the best-scoring Chinese legacy encoding, else a guess."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        utf8_error = error
    scored, no_chinese = [], []
    for rank, encoding in enumerate(LIKELY_ENCODINGS[1:]):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        share = _common_share(text[:200_000])
        if share is None:  # e.g. English with GBK curly quotes
            no_chinese.append(text)
        elif share >= MIN_COMMON_SHARE:
            scored.append((share, -rank, text))
    if scored:
        return max(scored)[2]
    if no_chinese:
        return no_chinese[0]
    best = from_bytes(data).best()
    if best is None:
        line = data[: utf8_error.start].count(b"\n") + 1
        raise InputError(
            f"{source}: cannot detect the text encoding (undecodable bytes; "
            f"not UTF-8 from line {line}, nor GB18030 or Big5)"
        )
    return str(best)


# Characters that Chinese text never contains but GBK/Big5 mojibake often does:
# private-use code points, kana, hangul and bopomofo.
_MOJIBAKE = re.compile("[\ue000-\uf8ff\u3040-\u30ff\u3100-\u312f\uac00-\ud7af\ufffd]")
_CJK = re.compile("[\u4e00-\u9fff]")


def _common_share(text: str) -> float | None:
    """Share of common characters among the wide ones; None if there are none.

    Guards against decoding Big5 as GB18030 (or back): real text uses common
    characters, mojibake uses rare ones and private-use code points.
    """
    wide = _CJK.findall(text) + _MOJIBAKE.findall(text)
    if not wide:
        return None
    return sum(1 for c in wide if c in COMMON_CHARACTERS) / len(wide)


# The most frequent characters of Simplified and Traditional Chinese news text.
COMMON_CHARACTERS = frozenset(
    "的一是不了在人有我他这個个们中来上大为為和国國地到以说說时時要就出会會可也你对對生能而子那得"
    "于於着著下自之年过過发發后後作里裡用道行所然家种種事成方多经經么麼去法学學如都同现現当當没沒动動"
    "面起看定天分还還进進好小部其些主样樣理心她本前开開但因只从從想实實日军軍者意无無力它与與长長把机機"
    "十民第公此已工使情明性知全三又关關点點正业業外将將两兩高间間由问問很最重并並物手应應战戰向头頭文体體"
    "政美相见見被利什二等产產或新己制身果加西斯月话話合回特代内內信表化老给給世位次度门門任常先海通教儿兒"
    "原东東声聲提立及比员員解水名真论論处處走义義各入几幾口认認条條平系气氣题題活尔爾更别別打女变變四神总總"
    "何电電数數安少报報才结結反受目太量再感建务務做接必场場件计計管期市直德资資命山金指克许許统統区區保至"
    "队隊形社便空决決治展马馬科司五基眼书書非则則听聽白却界达達光放强強即像难難且权權思王象完设設式色路记記"
    "南品住告类類求据據程北边邊死张張该該交规規万萬取拉格望觉覺术術领領共确確传傳师師观觀清今切院让讓识識候带帶"
    "导導争爭运運笑飞飛风風步改收根干幹造言联聯持组組每济濟车車亲親极極林服快办辦议議往元英士证證近失转轉夫令"
    "准準布始怎呢存未远遠叫台单單影具罗羅字爱愛击擊流备備兵连連调調深商算质質团團集百需价價花党黨华華城石级級"
    "整府离離况況亚亞请請技际際约約示复復病息究线線似官火断斷精满滿支视視消越器容照须須九增研写寫称稱企八功"
    "矿礦供链鏈盟稀土源"
)


def read_article(path: Path) -> Article:
    """Read a text file as one article whose doc_id comes from the seed manifest or the name.

    A file of the annotated corpus (a ``source: …`` header ended by ``---``) gives
    the text below its header, so its units' offsets match the gold records.
    """
    text = decode_bytes(path.read_bytes(), str(path))
    if text.startswith("source: http"):
        try:
            return Article(doc_id=path.stem, text=read_article_file(path).text, source=str(path))
        except ArticleFileError:
            pass  # not a corpus file after all: the whole text is the article
    return Article(doc_id=doc_id_for(path), text=text, source=str(path))


def load_manifest(seeds_dir: Path = SEEDS_DIR) -> list[dict[str, str]]:
    """Rows of ``seeds/manifest.csv`` (file, doc_id, title, outlet, author, date, script, …)."""
    with open(seeds_dir / "manifest.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def seed_doc_ids() -> dict[str, str]:
    """File name → doc_id of the seed articles, from seeds/manifest.csv (if present)."""
    if not (SEEDS_DIR / "manifest.csv").exists():
        return {}
    return {row["file"]: row["doc_id"] for row in load_manifest()}


def doc_id_for(path: Path) -> str:
    """The manifest slug for a seed file, otherwise the file name without extension."""
    return seed_doc_ids().get(path.name, path.stem)


def seed_paths(seeds_dir: Path = SEEDS_DIR) -> list[Path]:
    """The seed articles in manifest order."""
    return [seeds_dir / row["file"] for row in load_manifest(seeds_dir)]


def segment_file(path: Path) -> list[Unit]:
    """Sentence units of one article file."""
    article = read_article(path)
    return segment_text(article.text, article.doc_id)


def write_units(units: list[Unit], out) -> None:
    """Write units as JSON Lines (one unit a line, UTF-8, no ASCII escaping)."""
    for unit in units:
        out.write(json.dumps(unit.to_record(), ensure_ascii=False) + "\n")
