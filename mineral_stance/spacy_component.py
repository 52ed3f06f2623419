"""A spaCy pipeline component: claim types, stance and voice on every sentence span.

import spacy
nlp = spacy.blank("zh")                 # or spacy.blank("en"), or any loaded pipeline
nlp.add_pipe("mineral_stance")          # found through the spacy_factories entry point
doc = nlp(article_text)
for sent in doc.sents:
    sent._.claim_types, sent._.stance, sent._.voice, sent._.probs
doc._.mineral_stance                    # the article summary (counts, shares, net stance)

When no earlier component has set sentence boundaries, the project's own
segmenter sets them (the label schema's sentence rule, broken PDF lines joined,
headings, captions and footnotes kept apart), so the spans are the units
``mineral-stance classify`` labels. When a parser or sentencizer has set them,
those sentences are kept and labelled as they are. ``nlp.pipe`` sends the
sentences of a whole batch of documents through the model together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from mineral_stance.config import LABELLED_KINDS
from mineral_stance.context import contexts_of_articles
from mineral_stance.results import STANCE_COLOURS, summarise
from mineral_stance.segment import segment_text

FACTORY_NAME = "mineral_stance"
SPAN_EXTENSIONS = {"claim_types": None, "stance": None, "voice": None, "probs": None, "kind": None}
# labels of units that the model does not read (captions, footnotes, ...): the schema's default
DEFAULT_LABELS = {"claim_types": [], "stance": "unrelated", "voice": "author"}
RENDER_COLOURS = {**STANCE_COLOURS, "unrelated": "#f2f2f2"}
CLAIM_SHORT = {"threat_framing": "threat", "policy_recommendation": "rec.", "statistic": "stat"}


def register_extensions() -> None:
    """``Span._.claim_types/stance/voice/probs/kind`` and ``Doc._.mineral_stance``."""
    for name, default in SPAN_EXTENSIONS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
    if not Doc.has_extension(FACTORY_NAME):
        Doc.set_extension(FACTORY_NAME, default=None)


register_extensions()


@dataclass
class _Sentence:
    """One sentence span of a doc, the text the model reads for it, and its unit kind."""

    span: Span
    text: str
    kind: str


class MineralStanceComponent:
    """Labels each sentence span of a Doc with the mineral_stance classifier."""

    def __init__(self, nlp: Language, name: str, model: str | None, batch_size: int):
        from mineral_stance.predict import load_classifier

        self.name = name
        self.model = model
        self.batch_size = batch_size
        self.classifier = load_classifier(model)

    def __call__(self, doc: Doc) -> Doc:
        return self._label([doc])[0]

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        """Label documents in batches: one model call for all sentences of a batch."""
        for docs in minibatch(stream, size=batch_size):
            yield from self._label(list(docs))

    def _label(self, docs: list[Doc]) -> list[Doc]:
        plans = [sentence_plan(doc) for doc in docs]
        labelled, contexts = contexts_of_articles(plans)  # each sentence in its context
        results = iter(
            self.classifier.predict(
                [s.text for s in labelled], contexts=contexts, batch_size=self.batch_size
            )
        )
        for doc, plan in zip(docs, plans, strict=True):
            records = []
            for index, sentence in enumerate(plan):
                if sentence.kind in LABELLED_KINDS:
                    result = next(results)
                    labels = {
                        "claim_types": result.claim_types,
                        "stance": result.stance,
                        "voice": result.voice,
                    }
                    probs = {name: round(p, 4) for name, p in result.probabilities.items()}
                else:
                    labels, probs = dict(DEFAULT_LABELS), None
                span = sentence.span
                span._.claim_types = labels["claim_types"]
                span._.stance = labels["stance"]
                span._.voice = labels["voice"]
                span._.probs = probs
                span._.kind = sentence.kind
                records.append(
                    {
                        "index": index,
                        "kind": sentence.kind,
                        "text": sentence.text,
                        "start": span.start_char,
                        "end": span.end_char,
                        **labels,
                        **{f"p_{name}": p for name, p in (probs or {}).items()},
                    }
                )
            doc._.mineral_stance = summarise(records, doc.user_data.get("doc_id", "doc"))
        return docs


@Language.factory(
    FACTORY_NAME,
    default_config={"model": None, "batch_size": 64},
    assigns=[f"span._.{name}" for name in SPAN_EXTENSIONS] + [f"doc._.{FACTORY_NAME}"],
)
def make_mineral_stance(
    nlp: Language, name: str, model: str | None, batch_size: int
) -> MineralStanceComponent:
    """``nlp.add_pipe("mineral_stance", config={"model": "path/to/model"})``; default: shipped."""
    return MineralStanceComponent(nlp, name, model, batch_size)


def sentence_plan(doc: Doc) -> list[_Sentence]:
    """The sentence spans to label: the doc's own, or the project segmenter's units."""
    if doc.has_annotation("SENT_START"):
        return [
            _Sentence(sent, sent.text.strip(), "body" if sent.text.strip() else "boilerplate")
            for sent in doc.sents
        ]
    return _segment(doc)


def _segment(doc: Doc) -> list[_Sentence]:
    """Set sentence starts at the segmenter's units; each unit's cleaned text is what is read.

    A unit that starts inside the token range of the previous one (a footnote a
    PDF dropped into the middle of a sentence) stays inside that sentence: spaCy
    sentences cannot overlap.
    """
    if len(doc) == 0:
        return []
    starts: dict[int, tuple[str, str]] = {}
    covered_until = 0
    for unit in segment_text(doc.text, "doc"):
        tokens = doc.char_span(unit.start, unit.end, alignment_mode="expand")
        if tokens is None or len(tokens) == 0 or tokens.start < covered_until:
            continue
        starts[tokens.start] = (unit.text, unit.kind)
        covered_until = tokens.end
    for token in doc:
        token.is_sent_start = token.i == 0 or token.i in starts
    return [
        _Sentence(sent, *starts.get(sent.start, (sent.text.strip(), "boilerplate")))
        for sent in doc.sents
    ]


def render(doc: Doc, jupyter: bool | None = None, page: bool = False) -> str:
    """displaCy view of a labelled doc: sentences shaded by stance, tagged with claim types."""
    from spacy import displacy

    ents, colours = [], {}
    for sent in doc.sents:
        stance, claims = sent._.stance, sent._.claim_types or []
        if stance is None or (stance == "unrelated" and not claims):
            continue
        parts = [stance] + [CLAIM_SHORT[c] for c in claims]
        if sent._.voice == "reported":
            parts.append("reported")
        label = " · ".join(parts)
        colours[label] = RENDER_COLOURS[stance]
        text = sent.text
        end = sent.start_char + len(text.rstrip())
        ents.append({"start": sent.start_char, "end": end, "label": label})
    summary = doc._.mineral_stance or {}
    title = None
    if summary:
        net = summary["net_stance"]
        title = f"{summary['sentences']} sentences; net stance " + (
            "n/a" if net is None else f"{net:+.2f}"
        )
    data = {"text": doc.text, "ents": ents, "title": title}
    return displacy.render(
        data, style="ent", manual=True, jupyter=jupyter, page=page, options={"colors": colours}
    )
