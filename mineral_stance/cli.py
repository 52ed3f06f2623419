"""The ``mineral-stance`` command line: one subcommand per pipeline step."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from mineral_stance import __version__
from mineral_stance.config import (
    COMPARED_CONFIGS,
    FIRST_PASS_PATH,
    GOLD_PATH,
    GUIDELINES_PATH,
    REPORTS_DIR,
    SECOND_PASS_PATH,
    SHIPPED_CONFIG,
    SHIPPED_MODEL_DIR,
    TrainConfig,
)


def cmd_segment(args: argparse.Namespace) -> int:
    """Write sentence units of each article as JSON Lines (stdout or -o).

    Articles are read as ``classify`` reads them: files, folders, globs or ``-``;
    text, Markdown, HTML (visible text), JSON Lines and CSV.
    """
    from mineral_stance.corpus import seed_paths, write_units
    from mineral_stance.inputs import InputProblem, iter_articles
    from mineral_stance.segment import segment_text

    paths = args.files or [str(p) for p in seed_paths()]
    if args.output:
        refuse_outputs_that_are_inputs(paths, [Path(args.output)])
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed = 0
    try:
        for item in iter_articles(paths):
            if isinstance(item, InputProblem):
                print(f"error: {item}", file=sys.stderr)
                failed += 1
                continue
            write_units(segment_text(item.text, item.doc_id), out)
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check annotation files against the label schema; list every problem with its line."""
    from mineral_stance.annotations import validate_file

    status = 0
    for path in args.files:
        records, problems = validate_file(path)
        for problem in problems:
            print(problem)
        if problems:
            status = 1
            print(f"{path}: {len(problems)} problem(s), {len(records)} valid record(s)")
        else:
            print(f"{path}: OK, {len(records)} records")
    return status


def cmd_stats(args: argparse.Namespace) -> int:
    """Print label counts per document."""
    from mineral_stance.annotations import label_counts
    from mineral_stance.dataset import corpus_frame

    frame = corpus_frame(Path(args.file), strict=False)
    records = frame.to_dict("records")
    keys = ["doc_id"] if args.by_document else ["perspective", "script"]
    for key in keys:
        table = label_counts(records, None if key == "doc_id" else frame[key].tolist())
        print(f"# by {key.replace('doc_id', 'document')}")
        print((table.T if args.transpose else table).to_string(), end="\n\n")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    """Cohen's kappa between two annotations of the same sentences."""
    from mineral_stance.annotations import agreement, load_records

    first, second = load_records(args.first), load_records(args.second)
    if args.exclude_codebook_examples:
        codebook = GUIDELINES_PATH.read_text(encoding="utf-8")
        quoted = {r["id"] for r in first if r["text"][:15] in codebook}
        first = [r for r in first if r["id"] not in quoted]
        print(
            f"left out {len(quoted & {r['id'] for r in second})} sentences quoted in the codebook"
        )
    result = agreement(first, second)
    print(result.to_text())
    if args.by:
        from mineral_stance.dataset import article_table

        group_of = dict(zip(*article_table()[["doc_id", args.by]].T.values, strict=True))
        for group in sorted({group_of.get(r["doc_id"], "unknown") for r in second}):
            ids = {r["id"] for r in second if group_of.get(r["doc_id"], "unknown") == group}
            part = agreement([r for r in first if r["id"] in ids],
                             [r for r in second if r["id"] in ids])
            print(f"\n# {args.by} {group}\n{part.to_text()}")
    if args.show_disagreements:
        for item in result.disagreements:
            print(f"\n{item['id']}  {item['text']}")
            print(f"  first:  {item['first']}\n  second: {item['second']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train on the gold file; thresholds and card metrics come from a leave-one-doc-out run."""
    import json

    from mineral_stance.annotations import file_sha256
    from mineral_stance.calibration import apply_temperatures, calibration_report
    from mineral_stance.config import CLAIM_TYPES
    from mineral_stance.dataset import corpus_contexts, cross_validation_data
    from mineral_stance.evaluate import (
        bootstrap_intervals,
        cross_validation_folds,
        fit_on_fold,
        grouped_cross_validation,
        held_out_decisions,
        load_held_out,
        outlet_groups,
        score,
        split_description,
    )
    from mineral_stance.predict import StanceClassifier
    from mineral_stance.report import describe_training, write_model_card
    from mineral_stance.train import STATE_CACHE_ENV, tune_class_offsets, tune_thresholds

    config = TrainConfig.from_toml(args.config)
    out = Path(args.output or Path("models") / Path(args.config).stem)
    if out.resolve() == SHIPPED_MODEL_DIR.resolve() and not args.overwrite:
        raise ValueError(
            f"{out} is the shipped model; pass --overwrite to replace it (git can restore it)"
        )
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"{out} exists; choose another -o or pass --overwrite")
    texts, targets, frame = cross_validation_data(Path(args.gold))
    doc_ids = frame["doc_id"].tolist()
    groups, n_folds = outlet_groups(frame, args.folds)
    contexts = corpus_contexts(frame)
    all_targets, all_groups = targets, groups  # the final fit reads every sentence
    started = time.perf_counter()
    if args.held_out:
        # the out-of-fold probabilities of a `compare` run of this config on this gold file
        metadata = held_out_metadata(args.gold, args.config, n_folds, 0.0)
        metadata.pop("seconds")
        oof, saved = load_held_out(Path(args.held_out), metadata)
        if len(oof.stance) != len(texts):
            raise ValueError(f"{args.held_out}: {len(oof.stance)} sentences, the gold has "
                             f"{len(texts)}")
        decisions, _ = held_out_decisions(
            oof, targets, cross_validation_folds(groups, n_folds), [0.5] * len(CLAIM_TYPES)
        )
        cv_minutes = saved["seconds"] / 60
        print(f"cross-validation read from {args.held_out}", flush=True)
    elif args.one_fold:
        # train without the first outlet-held-out fold and score it, nothing else: for
        # configs whose five folds take longer than the user can wait
        test_index = cross_validation_folds(groups, n_folds)[0]
        print(f"holding out the first fold ({len(test_index)} sentences)", flush=True)
        oof = fit_on_fold(
            StanceClassifier(config, cache_states=True), texts, targets, groups, test_index,
            contexts,
        )
        targets = targets.subset(test_index)
        groups = [groups[i] for i in test_index]
        # plain decisions: the thresholds and offsets are tuned on these very predictions
        decisions = oof.decide([0.5] * len(CLAIM_TYPES))
        split = (f"the first of the {n_folds} outlet-held-out folds only ({len(test_index)} "
                 f"sentences, {len(set(groups))} outlet groups; claim threshold 0.5 and "
                 "argmax, nothing tuned on them)")
        cv_minutes = (time.perf_counter() - started) / 60
    else:
        oof, decisions, _ = grouped_cross_validation(
            lambda: StanceClassifier(config, cache_states=True),
            texts,
            targets,
            groups,
            n_folds,
            on_fold=lambda fold: print(f"cross-validation: holding out {fold}", flush=True),
            contexts=contexts,
        )
        cv_minutes = (time.perf_counter() - started) / 60
    if not args.one_fold:
        split = split_description(n_folds)
    after_cross_validation = time.perf_counter()
    metrics = score(targets, decisions)
    intervals = bootstrap_intervals(targets, decisions)
    calibration = calibration_report(
        oof,
        targets,
        cross_validation_folds(groups, n_folds),
        Path(args.reports) if args.reports else out,
        f"{Path(args.config).stem} ({split})",
    )
    # thresholds on the calibrated probabilities the saved model will output
    calibrated = apply_temperatures(oof, calibration["temperatures"])
    thresholds = tune_thresholds(calibrated.claims, targets.claims)
    stance_offsets = tune_class_offsets(calibrated.stance, targets.stance)
    voice_offsets = tune_class_offsets(calibrated.voice, targets.voice)
    print("training on all sentences", flush=True)
    fit_started = time.perf_counter()
    classifier = StanceClassifier(config).fit(
        texts, all_targets, progress=True, contexts=contexts, groups=all_groups
    )
    fit_minutes = (time.perf_counter() - fit_started) / 60
    classifier.claim_thresholds = thresholds
    classifier.stance_offsets = stance_offsets
    classifier.voice_offsets = voice_offsets
    classifier.temperatures = calibration["temperatures"]
    classifier.save_pretrained(out)
    write_model_card(
        out,
        {
            "trained": describe_training(config),
            "base_model": config.base_model,
            "thresholds": ", ".join(f"{t:.2f}" for t in thresholds),
            "offsets": "stance " + ", ".join(f"{o:+.1f}" for o in stance_offsets)
                       + "; voice " + ", ".join(f"{o:+.1f}" for o in voice_offsets),
            "temperatures": ", ".join(f"{task} {t:.2f}"
                                      for task, t in calibration["temperatures"].items()),
            "ece": ", ".join(f"{task} {calibration['ece_before'][task]:.3f} → "
                             f"{calibration['ece_after'][task]:.3f}"
                             for task in calibration["ece_before"]),
            "fit_minutes": fit_minutes,
            "total_minutes": cv_minutes + (time.perf_counter() - after_cross_validation) / 60,
            "cached": (f"; the cross-validation was a `compare` run's, read from "
                       f"`{args.held_out}`" if args.held_out else "")
                      + ("; the frozen encoder states were read from the state cache "
                         f"({STATE_CACHE_ENV}), so no sentence was encoded"
                         if os.environ.get(STATE_CACHE_ENV) else ""),
            "threads": config.threads,
            "data_sha256": file_sha256(args.gold),
            "n": len(texts),
            "documents": f"{len(set(doc_ids))} articles from {len(set(all_groups))} outlet "
                         "groups",
            "split": split,
            "config": json.dumps(classifier.model.config.training, indent=2),
            "claim_f1": metrics["claim_types"]["macro_f1"],
            "claim_lo": intervals["claim_types"][0],
            "claim_hi": intervals["claim_types"][1],
            "stance_f1": metrics["stance"]["macro_f1"],
            "stance_lo": intervals["stance"][0],
            "stance_hi": intervals["stance"][1],
            "voice_f1": metrics["voice"]["macro_f1"],
            "voice_lo": intervals["voice"][0],
            "voice_hi": intervals["voice"][1],
            "max_length": config.max_length,
            "config_path": args.config,
        },
    )
    (out / "cv_metrics.json").write_text(
        json.dumps({"split": split, "cross_validation": metrics,
                    "bootstrap_95": intervals,
                    "calibration": {k: calibration[k] for k in ("ece_before", "ece_after",
                                                                "temperatures")},
                    "minutes": {"final_fit": round(fit_minutes, 1),
                                "cross_validation": round(cv_minutes, 1),
                                "total": round(cv_minutes + (time.perf_counter()
                                                             - after_cross_validation) / 60, 1)}},
                   indent=2),
        encoding="utf-8",
    )
    print(
        f"final fit {fit_minutes:.1f} min; saved to {out}; cross-validated macro-F1 "
        f"claims {metrics['claim_types']['macro_f1']:.3f}, "
        f"stance {metrics['stance']['macro_f1']:.3f}, voice {metrics['voice']['macro_f1']:.3f}"
    )
    return 0


def training_overlap(model_dir: Path, records: list[dict]) -> int | None:
    """How many of ``records`` the model was trained on (None when its card names no data).

    The model card records the sha256 of the gold file it was trained on; when
    the project's gold file is that file, its sentences are the training data.
    """
    import re

    from mineral_stance.annotations import file_sha256, load_records

    card = model_dir / "README.md"
    if not card.exists():
        return None
    match = re.search(r"sha256 `([0-9a-f]{64})`", card.read_text(encoding="utf-8"))
    if not match or not GOLD_PATH.exists() or file_sha256(GOLD_PATH) != match.group(1):
        return None
    try:
        trained_on = {record["text"] for record in load_records(GOLD_PATH)}
    except ValueError:  # the gold file is being edited and no longer valid: cannot tell
        return None
    return sum(record["text"] in trained_on for record in records)


def predicted_order(claims: list[str]) -> list[str]:
    """Claim types in the schema's order (as the model lists them)."""
    from mineral_stance.config import CLAIM_TYPES

    return [c for c in CLAIM_TYPES if c in claims]


def describe_labels(labels: dict) -> str:
    """``stance / voice / claims`` in one short string, for tables of errors."""
    claims = ", ".join(labels["claim_types"]) or "no claim"
    return f"{labels['stance']} / {labels['voice']} / {claims}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on any schema file, taking each record's text as one sentence."""
    import json

    from mineral_stance.annotations import load_records

    html_path = Path(args.html) if args.html else None
    refuse_outputs_that_are_inputs([args.gold], [html_path])
    if html_path is not None and html_path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--html writes an HTML file (.html), not {html_path.name}")
    model_dir = Path(args.model) if args.model else SHIPPED_MODEL_DIR
    records = load_records(args.gold)
    overlap = training_overlap(model_dir, records)
    if overlap:
        print(
            f"warning: {overlap} of {len(records)} sentences in {args.gold} are in the data "
            f"{model_dir} was trained on; these scores are not held-out (the model card's "
            "cross-validated scores are)",
            file=sys.stderr,
        )

    from mineral_stance.context import contexts_of_units
    from mineral_stance.evaluate import score
    from mineral_stance.labels import targets_from_records
    from mineral_stance.predict import load_classifier

    classifier = load_classifier(args.model, backend=args.backend, precision=args.precision)
    texts = [r["text"] for r in records]
    # each sentence in its context, as in classify: the sentence before it in its document
    # (and that document, for a model reading article vectors); records carry no title
    contexts = contexts_of_units(texts, [""] * len(texts), [r["doc_id"] for r in records])
    probabilities = classifier.predict_proba(texts, contexts)
    metrics = score(
        targets_from_records(records), classifier.decide(probabilities)
    )
    if overlap:
        metrics["training_overlap"] = overlap
    if html_path is not None:
        from mineral_stance.evaluate import bootstrap_intervals
        from mineral_stance.labels import label_dicts
        from mineral_stance.report import html_report

        decisions = classifier.decide(probabilities)
        errors = []
        for record, predicted in zip(records, label_dicts(decisions), strict=True):
            gold = {k: record[k] for k in ("claim_types", "stance", "voice")}
            gold["claim_types"] = predicted_order(gold["claim_types"])
            if gold != predicted:
                errors.append(
                    {
                        "id": record["id"],
                        "text": record["text"],
                        "gold": describe_labels(gold),
                        "predicted": describe_labels(predicted),
                    }
                )
        html_path.write_text(
            html_report(
                metrics,
                source=str(args.gold),
                model=str(model_dir),
                intervals=bootstrap_intervals(targets_from_records(records), decisions),
                errors=errors,
            ),
            encoding="utf-8",
        )
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
    else:
        print(f"{metrics['n']} sentences")
        print(f"claim types macro-F1 {metrics['claim_types']['macro_f1']:.3f}")
        for name, m in metrics["claim_types"]["per_label"].items():
            print(
                f"  {name:<22} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
                f"(n={m['support']})"
            )
        for task in ("stance", "voice"):
            print(
                f"{task} macro-F1 {metrics[task]['macro_f1']:.3f}, "
                f"accuracy {metrics[task]['accuracy']:.3f}"
            )
    if html_path is not None:
        print(f"HTML report: {html_path}", file=sys.stderr)
    return 0


def display_path(path: str) -> str:
    """A path as a reader of the report can use it: relative to the working folder when
    inside it (the default gold file is absolute), unchanged otherwise."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def held_out_metadata(gold: str, config_path: str, n_folds: int | None, seconds: float) -> dict:
    """What a cross-validation's out-of-fold probabilities depend on (see save_held_out)."""
    from mineral_stance.annotations import file_sha256
    from mineral_stance.evaluate import split_description

    return {
        "gold_sha256": file_sha256(gold),
        "config_sha256": file_sha256(config_path),
        "split": split_description(n_folds),
        "seconds": seconds,
    }


def compare_command(args: argparse.Namespace) -> str:
    """The command line that reproduces a comparison, for its report."""
    parts = ["mineral-stance compare", *args.configs]
    if args.gold != str(GOLD_PATH):
        parts += ["--gold", args.gold]
    if args.seeds_only:
        parts.append("--seeds-only")
    if args.folds != 5:
        parts += ["--folds", str(args.folds)]
    if args.only:
        parts += ["--only", *(f'"{name}"' for name in args.only)]
    if args.output != str(REPORTS_DIR):
        parts += ["-o", args.output]
    return " ".join(parts)


def cmd_compare(args: argparse.Namespace) -> int:
    """Every system, leave-one-document-out, in one table (Markdown, JSON, PNG)."""
    from mineral_stance.annotations import file_sha256
    from mineral_stance.baselines import (
        EmbeddingBaseline,
        MajorityBaseline,
        RulesBaseline,
        SetFitBaseline,
        TfidfBaseline,
    )
    from mineral_stance.calibration import calibration_errors, cross_fitted
    from mineral_stance.dataset import corpus_contexts, cross_validation_data
    from mineral_stance.error_analysis import error_report
    from mineral_stance.evaluate import (
        cross_validation_folds,
        outlet_groups,
        run_comparison,
        save_held_out,
        split_description,
    )
    from mineral_stance.predict import StanceClassifier
    from mineral_stance.report import (
        breakdown_markdown,
        comparison_markdown,
        confusion_markdown,
        plot_comparison,
        plot_confusion,
        write_json,
    )

    texts, targets, frame = cross_validation_data(Path(args.gold), args.seeds_only)
    groups, n_folds = outlet_groups(frame, args.folds)
    systems = {
        "majority": MajorityBaseline,
        "rules": RulesBaseline,
        "tfidf-char-lr": TfidfBaseline,
        "e5-frozen-lr": lambda: EmbeddingBaseline(TrainConfig().base_model),
    }
    if importlib.util.find_spec("setfit") is not None:
        # 60 contrastive steps: what five folds of SetFit afford on a 2-core CPU
        systems["setfit"] = lambda: SetFitBaseline(TrainConfig().base_model, max_steps=60)
    config_of_system = {}
    for config_path in args.configs:
        config = TrainConfig.from_toml(config_path)
        kind = "linear probe" if config.is_linear_probe else "fine-tuned"
        name = f"{kind} ({Path(config_path).stem})"
        config_of_system[name] = config_path
        systems[name] = lambda config=config: StanceClassifier(config, cache_states=True)
    if args.only:
        systems = {k: v for k, v in systems.items() if any(o in k for o in args.only)}
    breakdowns = {key: frame[key].tolist() for key in ("perspective", "script", "doc_id")}
    contexts = corpus_contexts(frame)
    folds = cross_validation_folds(groups, n_folds)
    held_out: dict[str, tuple] = {}

    def keep_held_out(name, oof, decisions):
        held_out[name] = (oof, decisions)

    results = run_comparison(systems, texts, targets, groups, n_folds, breakdowns,
                             log=lambda m: print(m, flush=True), contexts=contexts,
                             on_system=keep_held_out)
    for name, (oof, _) in held_out.items():
        results[name]["calibration_error"] = {
            "before": calibration_errors(oof, targets),
            "after_temperature_scaling": calibration_errors(cross_fitted(oof, targets, folds)[0],
                                                            targets),
        }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, config_path in config_of_system.items():
        if name in held_out:  # train --held-out reuses this cross-validation
            save_held_out(
                out / "held_out" / f"{Path(config_path).stem}.npz",
                held_out[name][0],
                held_out_metadata(args.gold, config_path, n_folds, results[name]["seconds"]),
            )
    commands = [compare_command(args) + (" --add" if args.add else "")]
    ran = dict(results)
    if args.add and (out / "comparison.json").exists():
        # systems compared earlier on the same gold file and split stay in the table
        import json

        earlier = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
        if earlier.get("gold_sha256") == file_sha256(args.gold) and earlier.get(
            "split"
        ) == split_description(n_folds):
            results = {**{k: v for k, v in earlier["systems"].items() if k not in results},
                       **results}
            commands = earlier.get("commands", []) + commands
        else:
            print(f"{out / 'comparison.json'} was made on other data or another split: "
                  "replaced, not joined", file=sys.stderr)

    def overall(name: str) -> float:
        return sum(results[name]["metrics"][t]["macro_f1"]
                   for t in ("claim_types", "stance", "voice"))

    best = max(ran, key=overall)
    # the errors of the best system in the table (kept from an earlier run if that one is)
    if overall(best) >= max(overall(name) for name in results) or not (
        out / "errors.md"
    ).exists():
        (out / "errors.md").write_text(
            error_report(best, frame, targets, *held_out[best], contexts), encoding="utf-8"
        )
    best = max(results, key=overall)
    write_json({"gold_sha256": file_sha256(args.gold), "split": split_description(n_folds),
                "commands": commands, "systems": results}, out / "comparison.json")
    plot_comparison(results, out / "comparison.png")
    sections = [
        f"# Cross-validated comparison: {split_description(n_folds)}",
        "",
        f"Gold: `{display_path(args.gold)}` ({len(texts)} sentences, "
        f"{frame['doc_id'].nunique()} articles, "
        f"{len(set(groups))} outlet groups). Each system is trained without one fold and "
        "scored on it; scores are pooled over the held-out folds. Articles are never split, "
        "every outlet (and every copy of one story) sits in one fold only, so each score says "
        "how the system does on outlets it has never read. Claim thresholds of "
        "tuned systems are chosen on the other folds' out-of-fold predictions. "
        "95% intervals: 1000 bootstrap resamples of sentences. "
        "The rules and the textual cues (`mineral_stance/cues.py`) are fixed patterns "
        "taken from the label schema, never fitted per fold; they were written "
        "while reading the five seed articles.",
        "",
        "Made by: " + ", then ".join(f"`{command}`" for command in commands),
        "",
        f"Most confident errors of the best system ({best}): [errors.md](errors.md).",
        "",
        comparison_markdown(results),
        "",
        "![macro-F1 per task](comparison.png)",
    ]
    for name, result in results.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        plot_confusion(result["metrics"], name, out / f"confusion-{slug}.png")
        sections += ["", f"## Stance confusion: {name}", "", confusion_markdown(result["metrics"])]
    sections += breakdown_markdown(results, ("perspective", "script"))
    (out / "comparison.md").write_text("\n".join(sections) + "\n", encoding="utf-8")
    print(f"wrote {out / 'comparison.md'}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Label every sentence of many articles; one output table, per-article summaries."""
    from contextlib import nullcontext

    from tqdm.auto import tqdm

    from mineral_stance.batch import (
        BatchCounts,
        RecordWriter,
        chunks_of_articles,
        output_format,
        read_output,
        write_summaries,
    )
    from mineral_stance.batch_output import BatchOutput
    from mineral_stance.inputs import InputProblem, discover, iter_articles
    from mineral_stance.segment import segment_text

    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise ValueError(f"--min-confidence must be between 0 and 1, not {args.min_confidence}")
    if args.engine == "ray":
        return classify_on_ray(args)
    out = Path(args.output) if args.output else None
    summary = Path(args.summary) if args.summary else None
    output_format(out)
    if out is None and (args.resume or args.overwrite or summary):
        raise ValueError("--resume, --overwrite and --summary need an output file (-o)")
    if args.resume and args.overwrite:
        raise ValueError("use either --resume or --overwrite, not both")
    refuse_outputs_that_are_inputs(args.paths, [out, summary])
    if summary is not None and summary.exists() and not (args.resume or args.overwrite):
        raise ValueError(f"{summary} exists; use --resume or --overwrite to replace it")
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    output = BatchOutput(out, mode) if out is not None else None
    exclude = output.files() if output is not None else set()
    if summary is not None:
        exclude.add(summary)
    if args.overwrite:  # a mistyped path must not cost the old output its records
        missing = [p for p in discover(args.paths, exclude=exclude) if isinstance(p, InputProblem)]
        if missing:
            raise ValueError(f"{missing[0]}; nothing done, so --overwrite keeps {out} as it is")

    counts = BatchCounts()

    def articles():
        for item in iter_articles(
            args.paths,
            text_field=args.text_field,
            id_field=args.id_field,
            text_column=args.text_column,
            exclude=exclude,
        ):
            if isinstance(item, InputProblem):
                counts.failed += 1
                tqdm.write(f"error: {item}", file=sys.stderr)
            elif item.doc_id in done_before:
                counts.skipped += 1
            else:
                yield item

    done_before: set[str] = set()
    progress = None  # set once the output is locked and the model loaded
    try:
        with output if output is not None else nullcontext():  # locks -o before the model loads
            if output is not None:
                if output.repaired:
                    print(f"{out}: {output.repaired}", file=sys.stderr)
                done_before = output.done_before
            # every input is read first, so the bar can count sentences against a total
            pending = list(articles())
            total = sum(len(segment_text(article.text, article.doc_id)) for article in pending)
            from mineral_stance.predict import load_classifier  # torch loads here, after checks

            classifier = load_classifier(
                args.model, threads=args.threads, backend=args.backend, precision=args.precision
            )
            if args.batch_size is not None:  # else the backend's own default
                classifier.batch_size = args.batch_size
            stdout = RecordWriter(None) if output is None else None
            progress = tqdm(desc="classifying", total=total, unit=" sentences",
                            file=sys.stderr, disable=args.quiet)
            for chunk in chunks_of_articles(pending):
                groups = classifier.classify_unit_groups(
                    [units for _, units in chunk], min_confidence=args.min_confidence
                )
                for (article, _), records in zip(chunk, groups, strict=True):
                    for record in records:
                        record["source"] = article.source
                    if records and output is not None:
                        output.write_article(article.doc_id, records)
                    elif records and stdout is not None:
                        stdout.write_article(records)
                    counts.done += 1
                    counts.sentences += len(records)
                    progress.update(len(records))
            progress.close()
            if output is not None and not output.commit() and mode == "overwrite":
                print(f"nothing was classified; {out} left unchanged", file=sys.stderr)
    except KeyboardInterrupt:
        if progress is None:
            raise  # nothing done yet: main() says so
        progress.close()
        print(counts.final_line(), file=sys.stderr)
        print(f"error: interrupted; {_what_is_kept(output)}", file=sys.stderr)
        return 130
    except OSError as error:  # a full disk or an output that cannot be written
        if progress is None or isinstance(error, BrokenPipeError):
            raise  # nothing done yet (or stdout closed): main() handles it
        progress.close()
        print(counts.final_line(), file=sys.stderr)
        where = error.filename or (output.target if output is not None else "<stdout>")
        print(
            f"error: {where}: cannot write: {error.strerror or error}; {_what_is_kept(output)}",
            file=sys.stderr,
        )
        return 1
    if summary is not None and out.exists():
        try:
            n = write_summaries(read_output(out), summary)
        except OSError as error:
            print(f"error: {summary}: cannot write: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"wrote {n} article summaries to {summary}", file=sys.stderr)
    print(counts.final_line(), file=sys.stderr)
    return 1 if counts.failed else 0


def _what_is_kept(output) -> str:
    """What an interrupted or failed run leaves, in words."""
    if output is None:
        return "the records already printed are complete articles"
    if output.mode == "overwrite":
        return f"{output.out} left unchanged"
    if not output.written:
        return f"nothing new was written to {output.out}"
    return (
        f"{output.written} finished article(s) kept in {output.target}; "
        "run the same command with --resume to finish"
    )


def refuse_outputs_that_are_inputs(inputs: list[str], outputs: list[Path | None]) -> None:
    """An output may be neither an input named on the command line nor another output."""
    import os

    from mineral_stance.inputs import named_files

    named = named_files(inputs)
    seen: dict[str, Path] = {}
    for path in outputs:
        if path is None:
            continue
        real = os.path.realpath(os.path.abspath(path))
        if real in named:
            raise ValueError(f"{path} is an input; choose another output file")
        if real in seen:
            raise ValueError(f"{path} is given as two different outputs")
        seen[real] = path


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``error: …`` (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """A whole number of at least 1 (batch size, threads): checked before the model loads."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fold_count(text: str) -> int:
    """Cross-validation folds: 0 (leave one document out) or at least 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 1 or value < 0:
        raise argparse.ArgumentTypeError(
            f"must be 0 (leave one document out) or at least 2, got {value}"
        )
    return value


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Usage error (before any model loads) when an output exists and --overwrite is not given."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise ValueError(f"{', '.join(existing)} exists; use --overwrite to replace it")


def _labelled_by_model(records: list[dict], model: str | None, threads: int | None) -> None:
    """Put the model's labels and probabilities on sentence records (in place)."""
    from mineral_stance.context import contexts_of_units
    from mineral_stance.predict import load_classifier

    classifier = load_classifier(model, threads=threads)
    texts = [r["text"] for r in records]
    # each sentence with the one before it in its document, and that document
    contexts = contexts_of_units(texts, [""] * len(texts), [r.get("doc_id", "") for r in records])
    results = classifier.predict(texts, contexts, show_progress_bar=True)
    for record, result in zip(records, results, strict=True):
        record.update(result.to_record())


def cmd_export(args: argparse.Namespace) -> int:
    """Sentences as annotation tasks, pre-annotated by the model, plus the tool's configuration."""
    from mineral_stance.annotation_tools import export_paths, read_sentences, write_export

    out = Path(args.output)
    expected = ".json" if args.format == "label-studio" else ".jsonl"
    if out.suffix.lower() != expected:
        raise ValueError(f"{args.format} tasks are written as {expected}, not {out.name}")
    _refuse_existing(list(export_paths(out, args.format).values()), args.overwrite)
    records, problems = read_sentences(args.files)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not records:
        print("error: no sentences to export", file=sys.stderr)
        return 1
    if not args.no_model:
        _labelled_by_model(records, args.model, args.threads)
    paths = write_export(records, out, args.format)
    print(
        f"wrote {len(records)} tasks to {out}; project configuration: "
        + ", ".join(str(p) for key, p in paths.items() if key != "tasks"),
        file=sys.stderr,
    )
    return 1 if problems else 0


def cmd_import(args: argparse.Namespace) -> int:
    """A finished Label Studio or doccano export as schema records (validated)."""
    from mineral_stance.annotation_tools import ImportProblems, import_export, write_records

    out = Path(args.output)
    if out.exists() and not (args.append or args.overwrite):
        raise ValueError(
            f"{out} exists; use --append to add the new sentences or --overwrite to replace it"
        )
    try:
        imported = import_export(args.export, args.format, annotator=args.annotator)
    except ImportProblems as error:
        print(f"error: {error}", file=sys.stderr)
        print(f"nothing written to {out}", file=sys.stderr)
        return 1
    written, skipped = write_records(imported.records, out, append=args.append)
    print(
        f"wrote {written} records to {out}"
        + (f"; {skipped} already there, left as they were" if skipped else "")
        + (
            f"; {imported.unannotated} tasks had no finished annotation"
            if imported.unannotated
            else ""
        ),
        file=sys.stderr,
    )
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    """The sentences of ARTICLES most worth annotating next (uncertain and diverse)."""
    from mineral_stance.annotation_tools import read_sentences, write_records
    from mineral_stance.annotations import load_records

    out = Path(args.output)
    if out.suffix.lower() != ".jsonl":
        raise ValueError(f"suggestions are written as .jsonl, not {out.name}")
    _refuse_existing([out], args.overwrite)
    if args.n < 1:
        raise ValueError("-n must be at least 1")
    gold = load_records(args.gold) if args.gold else []
    candidates, problems = read_sentences(args.paths)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)

    from mineral_stance.predict import load_classifier
    from mineral_stance.suggest import suggest

    classifier = load_classifier(args.model, threads=args.threads)
    chosen = suggest(classifier, candidates, gold, args.n, strategy=args.strategy)
    write_records(chosen, out)
    print(
        f"wrote {len(chosen)} of {len(candidates)} candidate sentences to {out} "
        f"(ready for: mineral-stance export --format label-studio {out} -o tasks.json)",
        file=sys.stderr,
    )
    return 1 if problems else 0
def classify_on_ray(args: argparse.Namespace) -> int:
    """``classify --engine ray``: the same records, as shards in the folder -o (ray_engine)."""
    from mineral_stance.batch import write_summaries
    from mineral_stance.ray_engine import classify_with_ray, read_shards

    if not args.output:
        raise ValueError("--engine ray needs an output folder (-o DIR) for its shards")
    out = Path(args.output)
    counts = classify_with_ray(
        args.paths,
        out,
        model=args.model,
        backend=args.backend,
        precision=args.precision,
        min_confidence=args.min_confidence,
        shard_format=args.shard_format,
        resume=args.resume,
        actors=args.actors,
        threads=args.threads,
        batch_size=args.batch_size,
        text_field=args.text_field,
        id_field=args.id_field,
        text_column=args.text_column,
        num_cpus=args.ray_cpus,
        progress=not args.quiet,
        on_problem=lambda message: print(f"error: {message}", file=sys.stderr),
        overwrite=args.overwrite,
    )
    if args.summary:
        n = write_summaries(read_shards(out), Path(args.summary))
        print(f"wrote {n} article summaries to {args.summary}", file=sys.stderr)
    print(counts.final_line(), file=sys.stderr)
    return 1 if counts.failed else 0


# --- options several commands share, defined once so they read and check alike --------


def add_model_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--model", help="model directory (default: the shipped model)")


def add_threads_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: the idle cores)"
    )


def add_backend_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="run the encoder with torch or ONNX Runtime (the [onnx] extra; faster)",
    )
    command.add_argument(
        "--precision", choices=("fp32", "int8"), default=None, help="ONNX weights (default fp32)"
    )


def add_overwrite_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--overwrite", action="store_true", help=what)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="mineral-stance",
        description="Label claims, stance toward the US-led minerals alliance, and voice, "
        "sentence by sentence, in Chinese and English commentary.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="clean and split articles into sentence units")
    segment.add_argument(
        "files",
        nargs="*",
        help="files, folders, globs or - (any format classify reads; default: the seeds)",
    )
    segment.add_argument("-o", "--output", help="write JSON Lines here instead of stdout")
    segment.set_defaults(run=cmd_segment)

    validate = commands.add_parser("validate", help="check annotation files against the schema")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(run=cmd_validate)

    stats = commands.add_parser(
        "stats", help="label counts per perspective and script (or per document)")
    stats.add_argument("file", nargs="?", default=str(GOLD_PATH))
    stats.add_argument("--transpose", action="store_true", help="groups as columns")
    stats.add_argument("--by-document", action="store_true", help="one row per article")
    stats.set_defaults(run=cmd_stats)

    agree = commands.add_parser("agreement", help="Cohen's kappa between two annotation files")
    agree.add_argument("first", nargs="?", default=str(FIRST_PASS_PATH))
    agree.add_argument("second", nargs="?", default=str(SECOND_PASS_PATH))
    agree.add_argument("--show-disagreements", action="store_true")
    agree.add_argument("--by", choices=["perspective", "script"],
                       help="also report agreement for each perspective or script")
    agree.add_argument(
        "--exclude-codebook-examples",
        action="store_true",
        help="leave out sentences quoted as examples in GUIDELINES.md",
    )
    agree.set_defaults(run=cmd_agreement)

    classify = commands.add_parser(
        "classify",
        help="label every sentence of articles (files, folders, globs, - for stdin)",
        description="Exit status: 0 when every input was read, 1 when any input could not "
        "be read (the batch still finishes) or the output could not be written, 2 on a usage "
        "error (nothing done), 130 when interrupted.",
    )
    classify.add_argument("paths", nargs="+", help="files, directories, globs, or - for stdin")
    classify.add_argument(
        "-o", "--output", help="output .jsonl (default: stdout), .csv or .parquet"
    )
    classify.add_argument("--summary", help="write per-article summaries here (.jsonl or .csv)")
    add_model_option(classify)
    classify.add_argument(
        "--batch-size", type=positive_int, default=None,
        help="sentences per model call (default: 64 for torch, 16 for onnx)",
    )
    add_threads_option(classify)
    add_backend_options(classify)
    classify.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="'ray': a Ray Data pipeline (the [ray] extra) on RAY_ADDRESS or a local Ray",
    )
    classify.add_argument(
        "--shard-format", choices=("parquet", "jsonl"), default="parquet", help="Ray output"
    )
    classify.add_argument("--actors", type=positive_int, default=None, help="Ray labelling actors")
    classify.add_argument(
        "--ray-cpus", type=positive_int, default=None, help="CPUs of a local Ray (default: all)"
    )
    classify.add_argument("--resume", action="store_true", help="skip articles already in -o")
    add_overwrite_option(classify, "replace an existing -o")
    classify.add_argument("--text-field", default="text", help="text field of .jsonl input")
    classify.add_argument("--id-field", default=None, help="id field/column of .jsonl/.csv input")
    classify.add_argument("--text-column", default="text", help="text column of .csv input")
    classify.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    classify.add_argument(
        "--min-confidence", type=float, default=None,
        help="flag stances whose probability is below this (stance_uncertain, "
             "stance_confidence columns); the stance label is kept")
    classify.set_defaults(run=cmd_classify)

    train = commands.add_parser("train", help="fine-tune the model from a config in training/")
    train.add_argument(
        "--config",
        default=SHIPPED_CONFIG,
        help=f"training settings (TOML; default {SHIPPED_CONFIG}, the shipped model's recipe)",
    )
    train.add_argument(
        "--gold", default=str(GOLD_PATH), help="labelled sentences (default: %(default)s)"
    )
    train.add_argument(
        "-o",
        "--output",
        help="model directory to write (default: models/<config name>; never the shipped "
        "model unless --overwrite)",
    )
    add_overwrite_option(train, "replace an existing model directory")
    train.add_argument("--folds", type=fold_count, default=5,
                       help="outlet-held-out folds for the card's metrics and the claim "
                            "thresholds (0: leave one document out)")
    train.add_argument("--reports", default=None,
                       help="where to write calibration.md/json/png (default: the model "
                            "directory; the shipped model's go to training/reports)")
    train.add_argument("--one-fold", action="store_true",
                       help="score the model trained without the first outlet-held-out fold "
                            "on that fold only, instead of all five (for slow configs)")
    train.add_argument("--held-out", default=None, metavar="NPZ",
                       help="reuse the cross-validation of a compare run of this config "
                            "(training/reports/held_out/<config>.npz) instead of running it "
                            "again; refused if the gold file, config or split differ")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a model on an annotation file")
    evaluate.add_argument("gold", help="JSON Lines in the label schema")
    add_model_option(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--html", help="where to write the HTML report")
    add_backend_options(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    compare = commands.add_parser(
        "compare", help="outlet-held-out comparison of baselines and fine-tuned models"
    )
    compare.add_argument(
        "configs",
        nargs="*",
        default=list(COMPARED_CONFIGS),
        metavar="CONFIG",
        help="training configs to compare beside the baselines (default: those in training/)",
    )
    compare.add_argument(
        "--gold", default=str(GOLD_PATH), help="labelled sentences (default: %(default)s)"
    )
    compare.add_argument(
        "-o",
        "--output",
        default=str(REPORTS_DIR),
        help="folder for comparison.md/.json/.png and confusion plots (default: %(default)s)",
    )
    compare.add_argument("--only", nargs="*", help="run only systems whose name contains these")
    compare.add_argument("--seeds-only", action="store_true",
                         help="the five seed articles alone (the gold set before the corpus grew)")
    compare.add_argument("--folds", type=fold_count, default=5,
                         help="outlet-held-out folds (0: leave one document out)")
    compare.add_argument("--add", action="store_true",
                         help="keep the systems already in the output's comparison.json "
                              "(same gold file and split) and add or replace these")
    compare.set_defaults(run=cmd_compare)

    export = commands.add_parser(
        "export",
        help="sentences as Label Studio or doccano tasks, pre-annotated by the model",
        description="FILE: articles (any format classify reads; their body and heading "
        "sentences become tasks) or JSON Lines of sentence records with id, doc_id and text "
        "(suggest output, a gold file). Writes the tasks and the tool's project configuration "
        "(Label Studio: OUT.label-config.xml; doccano: OUT.labels.json).",
    )
    export.add_argument(
        "files", nargs="+", metavar="FILE", help="articles or JSON Lines of sentence records"
    )
    export.add_argument(
        "--format", required=True, choices=["label-studio", "doccano"], help="the tool"
    )
    export.add_argument(
        "-o", "--output", required=True, help="tasks file: .json (Label Studio), .jsonl (doccano)"
    )
    add_model_option(export)
    export.add_argument(
        "--no-model",
        action="store_true",
        help="no model pre-annotation; records' own labels (if any) are the pre-annotation",
    )
    add_threads_option(export)
    add_overwrite_option(export, "replace existing outputs")
    export.set_defaults(run=cmd_export)

    importer = commands.add_parser(
        "import",
        help="a finished Label Studio or doccano export as validated schema records",
        description="Exit status: 0 when every annotated task became a record; 1 when any "
        "task has an unknown or missing label (each listed with its task id; nothing written); "
        "2 on a usage error.",
    )
    importer.add_argument("export", metavar="EXPORT", help="Label Studio JSON or doccano JSONL")
    importer.add_argument(
        "--format", required=True, choices=["label-studio", "doccano"], help="the tool"
    )
    importer.add_argument("-o", "--output", required=True, help="schema records (.jsonl)")
    importer.add_argument(
        "--annotator", help="annotator name for doccano (default: the export file's name)"
    )
    importer.add_argument(
        "--append", action="store_true", help="add to -o, skipping sentence ids already there"
    )
    add_overwrite_option(importer, "replace -o")
    importer.set_defaults(run=cmd_import)

    suggest = commands.add_parser(
        "suggest",
        help="the sentences most worth annotating next (model uncertainty and diversity)",
    )
    suggest.add_argument("paths", nargs="+", metavar="ARTICLES", help="files, folders, globs")
    suggest.add_argument(
        "-n", type=positive_int, default=200, help="how many sentences (default 200)"
    )
    suggest.add_argument("-o", "--output", required=True, help="suggested sentences (.jsonl)")
    suggest.add_argument(
        "--gold",
        default=str(GOLD_PATH) if GOLD_PATH.exists() else None,
        help="labelled sentences to stay away from (default: annotations/gold.jsonl)",
    )
    suggest.add_argument(
        "--strategy",
        choices=["margin", "entropy"],
        default="margin",
        help="how model uncertainty is measured per task (default: margin)",
    )
    add_model_option(suggest)
    add_threads_option(suggest)
    add_overwrite_option(suggest, "replace an existing -o")
    suggest.set_defaults(run=cmd_suggest)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mineral_stance.corpus import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): say nothing, and keep Python's exit flush quiet too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except InputError as error:  # an input file that cannot be read or is not valid
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, ImportError) as error:  # usage, bad models, an extra not installed
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
