"""Train configs on the first outlet-held-out fold only, and score them on it.

Fine-tuning the encoder costs on this 2-core machine about 10 minutes per epoch
of the 5,245-sentence corpus, so a full 5-fold comparison of the fine-tuned
configs does not fit one working session. This script gives the paired
evidence that does: each config is trained on folds 2-5 and scored on fold 1
(the same held-out outlets as fold 1 of `mineral-stance compare`), with plain
decisions (claim threshold 0.5, argmax) for every system so no tuning differs.
A linear probe run on the same fold is the reference.

    python training/one_fold.py training/e5-linear-probe.toml training/e5-finetune.toml \
        --epochs 2 -o training/reports/one_fold.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mineral_stance.config import GOLD_PATH, TrainConfig
from mineral_stance.dataset import corpus_contexts, cross_validation_data
from mineral_stance.evaluate import cross_validation_folds, fit_on_fold, outlet_groups, score
from mineral_stance.predict import StanceClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--gold", default=str(GOLD_PATH))
    parser.add_argument("--epochs", type=int, default=None, help="cap on the configs' epochs")
    parser.add_argument("-o", "--output", required=True, help="JSON results (added to)")
    args = parser.parse_args()

    texts, targets, frame = cross_validation_data(Path(args.gold))
    groups, n_folds = outlet_groups(frame, 5)
    contexts = corpus_contexts(frame)
    test_index = cross_validation_folds(groups, n_folds)[0]
    out = Path(args.output)
    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    for config_path in args.configs:
        config = TrainConfig.from_toml(config_path)
        if args.epochs is not None and config.epochs > args.epochs:
            config.epochs = args.epochs
        started = time.perf_counter()
        classifier = StanceClassifier(config, cache_states=True)
        probabilities = fit_on_fold(classifier, texts, targets, groups, test_index, contexts)
        metrics = score(targets.subset(test_index), probabilities.decide([0.5] * 3))
        name = Path(config_path).stem
        results[name] = {
            "epochs_cap": args.epochs,
            "best_epoch": classifier.model.config.training.get("best_epoch"),
            "minutes": round((time.perf_counter() - started) / 60, 1),
            "test_sentences": len(test_index),
            **{task: round(metrics[task]["macro_f1"], 4)
               for task in ("claim_types", "stance", "voice")},
            "per_label": {task: metrics[task]["per_label"]
                          for task in ("claim_types", "stance", "voice")},
        }
        print(name, json.dumps({k: v for k, v in results[name].items()
                                if k != "per_label"}), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
