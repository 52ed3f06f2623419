"""Clean an article and cut it into sentence units that point back into the source.

The seeds are text extracted from web pages and PDFs, so the raw lines are not
sentences: PDF extraction breaks sentences across lines (even across footnote
blocks at page ends), inserts spaces between Chinese characters, and leaves
footnote markers, tables, captions, bylines and editorial credits in the flow.

The pipeline, top to bottom:

1. ``read_lines``: every non-empty line with its character offset.
2. ``classify_line``: give each line a kind (body, heading, caption, footnote,
   table, boilerplate) from what it looks like and where it stands.
3. ``join_broken_lines``: a body line that stops mid-sentence is joined to the
   next body line, stepping over footnotes, tables and captions in between.
4. ``clean``: drop footnote markers and spaces inside Chinese text, keeping,
   for every kept character, its offset in the original text.
5. ``split_sentences``: the label schema's rule (。！？ end a Chinese sentence;
   . ! ? followed by a space end an English one, except after abbreviations
   taken from spaCy's English tokenizer exceptions).

Nothing is dropped: every line ends up in exactly one unit. Offsets are
character offsets into the decoded text (``text[start:end]`` spans the unit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

# --- Character classes ---------------------------------------------------------
CJK = r"\u3400-\u9fff\uf900-\ufaff"
CJK_PUNCT = r"\u3000-\u303f\uff00-\uffef“”‘’·—…"
CJK_CHAR = re.compile(f"[{CJK}]")
CJK_OR_PUNCT = re.compile(f"[{CJK}{CJK_PUNCT}]")
CHINESE_TERMINALS = "。！？!?"
ENGLISH_TERMINALS = ".!?"
CLOSERS = "”’」』）)\"'》"
# A line ending in one of these ends its paragraph (a colon introduces a block).
LINE_FINAL = CHINESE_TERMINALS + ENGLISH_TERMINALS + CLOSERS + ":：;；…"

# --- What each kind of line looks like in the seeds --------------------------
# ^① or ^{*}; never the digits after them ("^④2022年" is marker + year)
FOOTNOTE_MARKER = re.compile(r"\^(?:\{[^}]*\}|[①-⑳]|\*)")
FOOTNOTE_LINE = re.compile(r"^(?:-\s*)?(?:\^\{[^}]*\}|\^?[①-⑳])")
CAPTION_LINE = re.compile(
    r"^(?:图源|圖源|图\s*\d|圖\s*\d|表\s*\d|资料来源|資料來源|来源：|來源：)"
    r"|(?:图源|圖源)\s*[:：].*$"
    r"|(?:製圖|制图|视觉中国|視覺中國|新华社|新華社)\s*$"
    r"|[（(](?:左|右|上|下)[)）]"
)
BOILERPLATE_LINE = re.compile(
    r"^(?:作者简介|作者簡介|\*作者简介|关键词|關鍵詞|Keywords?:|【文/|本文编译|本文系|本文編譯"
    r"|排版|审阅|審閱|终审|終審|来源:|來源:|相关推荐|相關推薦|关于IPP|IPP评论是|IPP公共关系"
    r"|[（(]责任编辑|[（(]責任編輯)"
    r"|\|IPP全球智库纵览$|未经授权|未經授權"
    r"|\d{4}-\d{2}-\d{2} \d{2}:\d{2}"
)
# Lines after which the article proper is over (credits, related links, back matter).
END_OF_ARTICLE = re.compile(r"^(?:本文编译|本文編譯|本文系|[（(]责任编辑|[（(]責任編輯|相关推荐)")
ABSTRACT_LINE = re.compile(r"^(?:Abstract|摘要|内容提要|內容提要)\s*[:：]")
# possessive quantifiers: a long Title Case line must not backtrack exponentially
ENGLISH_NAMES = re.compile(
    r"^[A-Z][a-z]+(?: [A-Z][a-z]+)++(?:,? (?:and )?[A-Z][a-z]+(?: [A-Z][a-z]+)++)*+$"
)
NUMBERED_HEADING = re.compile(
    r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）]|第[一二三四五六七八九十]+)"
)
MAX_HEADING_CHARS = 30
# no abbreviation is longer (spaCy's longest English exception is well under this)
LONGEST_ABBREVIATION = 16
SHORT_LABEL_CHARS = 6


@dataclass
class Line:
    """One raw line of the source with its offset and assigned kind."""

    start: int
    text: str
    kind: str = "body"


@dataclass
class Unit:
    """A sentence (or a non-body line) with its place in the source file."""

    doc_id: str
    index: int
    kind: str
    text: str
    start: int
    end: int

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.index:04d}"

    def to_record(self) -> dict:
        return {"id": self.id, **asdict(self)}


def read_lines(text: str) -> list[Line]:
    """Every line holding something other than whitespace, with its start offset."""
    lines, offset = [], 0
    for raw in text.splitlines(keepends=True):
        if raw.strip():
            lead = len(raw) - len(raw.lstrip())
            lines.append(Line(start=offset + lead, text=raw.strip()))
        offset += len(raw)
    return lines


def is_chinese(text: str) -> bool:
    return bool(CJK_CHAR.search(text))


def looks_unfinished(text: str) -> bool:
    """A body line that stops mid-sentence (PDF line or page break)."""
    stripped = FOOTNOTE_MARKER.sub("", text).rstrip()
    return bool(stripped) and stripped[-1] not in LINE_FINAL


def looks_like_heading(text: str) -> bool:
    """Short, unpunctuated lines are headings; long unfinished ones are broken sentences."""
    bare = FOOTNOTE_MARKER.sub("", text).strip()
    if bare.endswith((":", "：")) and len(bare) <= SHORT_LABEL_CHARS:
        return True  # a run-in label such as 导语:
    if NUMBERED_HEADING.match(bare) and not any(c in bare for c in "。！？"):
        return True
    if any(c in bare[:-1] for c in CHINESE_TERMINALS) or not looks_unfinished(bare):
        return False
    if bare.endswith("-"):
        return False
    if is_chinese(bare):
        return len(re.sub(r"\s", "", bare)) <= MAX_HEADING_CHARS and not bare.startswith(
            ("一是", "二是", "三是", "四是", "其一", "其二", "其三")
        )
    return len(bare.split()) <= 12 and bare[:1].isupper()


def looks_like_byline(text: str, position: int) -> bool:
    """Author lines near the top: short, with spaces between name parts."""
    if position > 3:
        return False
    compact = re.sub(r"\s", "", text)
    return (
        is_chinese(text)
        and " " in text
        and len(compact) <= 20
        and not any(c in text for c in "。，,！？")
    )


def classify_line(line: Line, position: int, after_end: bool) -> str:
    """Decide a line's kind from its form and place (``position`` counts non-empty lines)."""
    text = line.text
    if (
        position == 0
        and not any(c in text for c in "。！？")
        and not text.endswith((".", ":", "："))
    ):
        return "heading"  # the title
    if "\t" in text:
        return "table"
    if FOOTNOTE_LINE.match(text):
        return "footnote"
    if ABSTRACT_LINE.match(text):
        return "body"
    if CAPTION_LINE.search(text) and not after_end:
        return "caption"
    if after_end or BOILERPLATE_LINE.search(text) or looks_like_byline(text, position):
        return "boilerplate"
    if ENGLISH_NAMES.match(text):
        return "boilerplate"
    if looks_like_heading(text):
        return "heading"
    return "body"


def classify_lines(lines: list[Line]) -> list[Line]:
    """Kinds for all lines; after an end-of-article marker only abstracts stay body."""
    after_end = False
    continuing_abstract = False
    for position, line in enumerate(lines):
        if END_OF_ARTICLE.search(line.text):
            after_end = True
        line.kind = classify_line(line, position, after_end)
        if after_end and continuing_abstract and line.kind == "boilerplate":
            # the second half of an abstract broken by the PDF ("wit-" / "nessed")
            line.kind = "body"
        if line.kind == "body":
            continuing_abstract = after_end and looks_unfinished(line.text)
        else:
            continuing_abstract = continuing_abstract and line.kind == "footnote"
    return lines


def join_broken_lines(lines: list[Line]) -> list[list[Line]]:
    """Group lines into paragraphs: unfinished body lines absorb the next body line.

    Footnotes, tables and captions that a page break put in the middle of a
    sentence are stepped over (they stay separate units); a heading or
    boilerplate line stops the search, so a truncated teaser is never glued to
    the text after it.
    """
    paragraphs: list[list[Line]] = []
    open_paragraph: list[Line] | None = None
    for line in lines:
        if line.kind == "body" and open_paragraph is not None:
            open_paragraph.append(line)
        elif line.kind == "body":
            open_paragraph = [line]
            paragraphs.append(open_paragraph)
        else:
            paragraphs.append([line])
            if line.kind in ("heading", "boilerplate"):
                open_paragraph = None
            continue
        if not looks_unfinished(line.text):
            open_paragraph = None
    return paragraphs


def clean(paragraph: list[Line]) -> tuple[str, list[int]]:
    """Join a paragraph's lines into clean text and the source offset of each character.

    Removes footnote markers, de-hyphenates English words broken at a line end,
    drops whitespace between Chinese characters and collapses other whitespace.
    """
    chars: list[str] = []
    offsets: list[int] = []
    for number, line in enumerate(paragraph):
        text = line.text
        keep = [True] * len(text)
        for marker in FOOTNOTE_MARKER.finditer(text):
            for i in range(marker.start(), marker.end()):
                keep[i] = False
        if number > 0 and chars:
            previous = chars[-1]
            if previous == "-" and text[:1].islower():
                chars.pop()
                offsets.pop()
            elif not is_chinese(previous) and not is_chinese(text[:1]):
                chars.append(" ")
                offsets.append(line.start - 1)
        for i, char in enumerate(text):
            if keep[i]:
                chars.append(char)
                offsets.append(line.start + i)
    return _squeeze_spaces(chars, offsets)


def _squeeze_spaces(chars: list[str], offsets: list[int]) -> tuple[str, list[int]]:
    """Drop spaces next to Chinese characters or punctuation; collapse runs of spaces."""
    # the next character that is not whitespace, for every position: one pass from the
    # end, so a paragraph with many spaces costs linear time, not a scan per space
    next_visible = [""] * (len(chars) + 1)
    for i in range(len(chars) - 1, -1, -1):
        next_visible[i] = next_visible[i + 1] if chars[i].isspace() else chars[i]
    out_chars: list[str] = []
    out_offsets: list[int] = []
    for i, char in enumerate(chars):
        if char.isspace() and char != "\u3000":
            before = out_chars[-1] if out_chars else ""
            after = next_visible[i + 1]
            if not before or not after or before == " ":
                continue
            if CJK_OR_PUNCT.match(before) and CJK_OR_PUNCT.match(after):
                continue
            char = " "
        out_chars.append(char)
        out_offsets.append(offsets[i])
    while out_chars and out_chars[-1] == " ":
        out_chars.pop()
        out_offsets.pop()
    return "".join(out_chars), out_offsets


# spaCy's English abbreviations, kept as a data file so segmenting imports no spaCy
# (whose import loads thinc and torch: seconds before the first label)
ABBREVIATIONS_FILE = Path(__file__).resolve().parent / "data" / "english_abbreviations.txt"
# abbreviations the seeds need beyond spaCy's list
EXTRA_ABBREVIATIONS = frozenset({"u.s", "u.k", "e.g", "i.e", "etc", "no", "vs", "p", "pp", "fig"})


def spacy_abbreviations() -> frozenset[str]:
    """Words spaCy's English tokenizer keeps with their full stop, lower-cased, dot dropped.

    What ``ABBREVIATIONS_FILE`` holds; the test suite compares the two so the
    file cannot drift from the spaCy the project depends on.
    """
    from spacy.lang.en.tokenizer_exceptions import TOKENIZER_EXCEPTIONS

    return frozenset(k[:-1].lower() for k in TOKENIZER_EXCEPTIONS if k.endswith(".") and len(k) > 1)


@lru_cache(maxsize=1)
def english_abbreviations() -> frozenset[str]:
    """Words ending in a full stop that do not end a sentence (spaCy's, and the seeds')."""
    lines = ABBREVIATIONS_FILE.read_text(encoding="utf-8").splitlines()
    words = {line for line in lines if line and not line.startswith("# ")}
    return frozenset(words) | EXTRA_ABBREVIATIONS


def sentence_ends(text: str) -> Iterator[int]:
    """Positions just after each sentence end, following the label schema."""
    length = len(text)
    i = start = 0
    while i < length:
        char = text[i]
        end = None
        if char in "。！？":
            end = i + 1
        elif char in ENGLISH_TERMINALS:
            j = i + 1
            while j < length and text[j] in CLOSERS:
                j += 1
            if (j == length or text[j].isspace()) and not _ends_in_abbreviation(text, i):
                end = i + 1
        if end is not None:
            while end < length and (text[end] in "。！？" or _closes(text, start, end)):
                end += 1
            yield end
            i = start = end
            continue
        i += 1


def _closes(text: str, start: int, position: int) -> bool:
    """A closing quote or bracket; a straight quote only if one is open in this sentence."""
    char = text[position]
    if char in "\"'":
        return text.count(char, start, position) % 2 == 1
    return char in CLOSERS


def _ends_in_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    # the run of ASCII letters and dots just before the dot, found by stepping back
    # (a regex over text[:dot] would copy and rescan the text at every full stop)
    start = dot
    while start > 0 and (text[start - 1] == "." or _is_ascii_letter(text[start - 1])):
        start -= 1
        if dot - start > LONGEST_ABBREVIATION:
            return False
    if start == dot:
        return False
    token = text[start:dot].lower()
    return token in english_abbreviations() or (len(token) == 1 and text[dot - 1].isupper())


def _is_ascii_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of a clean paragraph, whitespace trimmed."""
    spans, start = [], 0
    for end in [*sentence_ends(text), len(text)]:
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = end
    return spans


def segment_text(text: str, doc_id: str) -> list[Unit]:
    """All units of an article, in reading order of their first character."""
    lines = classify_lines(read_lines(text))
    pieces: list[tuple[str, str, int, int]] = []
    for paragraph in join_broken_lines(lines):
        kind = paragraph[0].kind
        if kind == "table":  # keep the cells' tab separators
            line = paragraph[0]
            clean_text, offsets = line.text, list(range(line.start, line.start + len(line.text)))
        else:
            clean_text, offsets = clean(paragraph)
        if not clean_text:
            continue
        spans = split_sentences(clean_text) if kind == "body" else [(0, len(clean_text))]
        for start, end in spans:
            pieces.append((kind, clean_text[start:end], offsets[start], offsets[end - 1] + 1))
    pieces.sort(key=lambda piece: piece[2])
    return [
        Unit(doc_id=doc_id, index=i, kind=kind, text=sentence, start=start, end=end)
        for i, (kind, sentence, start, end) in enumerate(pieces)
    ]
