"""What the classifier hands back: per-sentence records, article summaries, tables and HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mineral_stance.config import CLAIM_TYPES, LABELLED_KINDS, STANCES, VOICES

if TYPE_CHECKING:  # pandas loads in to_pandas: predicting does not need it (0.5 s, 80 MB)
    import pandas as pd

STANCE_COLOURS = {
    "support": "#d4f4dd",
    "oppose": "#fbd5d5",
    "neutral": "#d6e0ff",
    "unrelated": "transparent",
}
CLAIM_BADGES = {
    "threat_framing": "⚠ threat",
    "policy_recommendation": "➜ rec.",
    "statistic": "# stat",
}
TOP_SENTENCES = 3
# the columns every unit of an article has before its labels
UNIT_COLUMNS = ["id", "doc_id", "index", "kind", "text", "start", "end"]


def summarise(units: list[dict], doc_id: str) -> dict:
    """Counts and shares of claim types and stances over labelled units, plus a net stance.

    The net stance score is (support − oppose) / (support + oppose + neutral):
    +1 when every alliance-related sentence supports, −1 when every one
    opposes, 0 when balanced or neutral; None when no sentence refers to the
    alliance at all.
    """
    labelled = [u for u in units if u["kind"] in LABELLED_KINDS]
    n = len(labelled)
    summary: dict = {"doc_id": doc_id, "sentences": n, "units": len(units)}
    for claim in CLAIM_TYPES:
        count = sum(claim in u["claim_types"] for u in labelled)
        summary[f"{claim}_count"] = count
        summary[f"{claim}_share"] = round(count / n, 4) if n else 0.0
    for stance in STANCES:
        count = sum(u["stance"] == stance for u in labelled)
        summary[f"stance_{stance}_count"] = count
        summary[f"stance_{stance}_share"] = round(count / n, 4) if n else 0.0
    support, oppose, neutral = (
        summary[f"stance_{s}_count"] for s in ("support", "oppose", "neutral")
    )
    related = support + oppose + neutral
    summary["net_stance"] = round((support - oppose) / related, 4) if related else None
    summary["reported_share"] = (
        round(sum(u["voice"] == "reported" for u in labelled) / n, 4) if n else 0.0
    )
    for claim in ("threat_framing", "policy_recommendation"):
        ranked = sorted(
            (u for u in labelled if claim in u["claim_types"]),
            key=lambda u: u.get(f"p_claim_{claim}", 0.0),
            reverse=True,
        )
        summary[f"top_{claim}"] = [
            {"index": u["index"], "text": u["text"], "probability": u.get(f"p_claim_{claim}")}
            for u in ranked[:TOP_SENTENCES]
        ]
    return summary


@dataclass
class ArticleResult:
    """Every unit of one article with offsets, kind and labels, and the article summary.

    ``text`` (the decoded source, optional) lets the HTML view keep paragraphs.
    """

    doc_id: str
    units: list[dict]
    text: str | None = None
    summary: dict = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarise(self.units, self.doc_id)

    def to_pandas(self) -> pd.DataFrame:
        """One row per unit (sentence), probability columns included (even with no units)."""
        import pandas as pd

        if not self.units:
            return pd.DataFrame(columns=UNIT_COLUMNS + prediction_columns()[1:])
        return pd.DataFrame(self.units)

    def _repr_html_(self) -> str:
        """Jupyter view: headings and paragraphs as in the source; sentences shaded by stance,
        tagged by claim type, reported speech underlined (never slanted: CJK has no italics)."""
        s = self.summary
        net = "n/a" if s["net_stance"] is None else f"{s['net_stance']:+.2f}"
        header = (
            f"<div><b>{html.escape(self.doc_id)}</b> — {s['sentences']} sentences; "
            + ", ".join(f"{c}: {s[f'{c}_count']}" for c in CLAIM_TYPES)
            + f"; net stance {net}</div>"
        )
        legend = " ".join(
            f'<span style="background:{colour};padding:0 4px">{name}</span>'
            for name, colour in STANCE_COLOURS.items()
            if name != "unrelated"
        )
        legend += " " + " ".join(f"<sup>{badge}</sup> {c}" for c, badge in CLAIM_BADGES.items())
        blocks: list[str] = []
        paragraph: list[str] = []

        def close_paragraph() -> None:
            if paragraph:
                blocks.append(f'<p style="max-width:60em">{"".join(paragraph)}</p>')
                paragraph.clear()

        previous_end = None
        for unit in self.units:
            if self._starts_paragraph(previous_end, unit):
                close_paragraph()
            previous_end = unit.get("end")
            text = html.escape(unit["text"])
            if unit["kind"] == "heading":
                close_paragraph()
                blocks.append(f'<h4 style="margin:0.8em 0 0.3em">{self._sentence(unit)}</h4>')
            elif unit["kind"] not in LABELLED_KINDS:
                close_paragraph()
                blocks.append(
                    f'<div style="color:#888;font-size:0.85em" title="{unit["kind"]}">{text}</div>'
                )
            else:
                paragraph.append(self._sentence(unit))
        close_paragraph()
        return (
            f'<div style="font-family:sans-serif;line-height:1.7">{header}'
            f"<div>stance: {legend}; "
            '<span style="border-bottom:2px dotted #555">dotted underline</span>: reported</div>'
            f"{''.join(blocks)}</div>"
        )

    def _starts_paragraph(self, previous_end: int | None, unit: dict) -> bool:
        """A line break in the source between two units starts a new paragraph."""
        if self.text is None or previous_end is None or unit.get("start") is None:
            return False
        return "\n" in self.text[previous_end : unit["start"]]

    @staticmethod
    def _sentence(unit: dict) -> str:
        badges = "".join(
            f'<sup style="color:#a33;margin-left:2px">{CLAIM_BADGES[c]}</sup>'
            for c in unit["claim_types"]
        )
        style = f"background:{STANCE_COLOURS[unit['stance']]}"
        if unit["voice"] == "reported":
            style += ";border-bottom:2px dotted #555"
        title = f"{unit['stance']} / {unit['voice']} / {', '.join(unit['claim_types']) or '-'}"
        return (
            f'<span style="{style}" title="{html.escape(title)}">{html.escape(unit["text"])}'
            f"</span>{badges} "
        )


def prediction_columns() -> list[str]:
    """Columns of ``Predictions.to_pandas()``: the text, the labels, whether the text was cut
    to the model's length, then every probability."""
    return (
        ["text", "claim_types", "stance", "voice", "truncated"]
        + [f"p_claim_{name}" for name in CLAIM_TYPES]
        + [f"p_stance_{name}" for name in STANCES]
        + [f"p_voice_{name}" for name in VOICES]
    )


@dataclass
class Predictions:
    """Results for a list of sentences, convertible to a table; a slice is Predictions too."""

    results: list

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Predictions(self.results[index])
        return self.results[index]

    def __iter__(self):
        return iter(self.results)

    def __repr__(self) -> str:
        shown = ", ".join(f"{r.stance}/{r.voice}" for r in self.results[:3])
        more = ", …" if len(self.results) > 3 else ""
        return f"Predictions({len(self.results)} sentences: {shown}{more})"

    def to_records(self) -> list[dict]:
        """One plain dict per sentence (the JSON Lines records of ``classify``)."""
        return [result.to_record() for result in self.results]

    def to_pandas(self) -> pd.DataFrame:
        """One row per sentence; the full set of columns even when there are no rows."""
        import pandas as pd

        return pd.DataFrame(self.to_records(), columns=prediction_columns())

    def _repr_html_(self) -> str:
        return self.to_pandas()._repr_html_()
