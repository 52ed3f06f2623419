"""The ``mineral-stance`` command line: one subcommand per pipeline step."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

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
    """Write sentence units of each FILE as JSON Lines (stdout or -o)."""
    from mineral_stance.corpus import InputError, seed_paths, segment_file, write_units

    paths = [Path(p) for p in args.files] or seed_paths()
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed = 0
    try:
        for path in paths:
            try:
                write_units(segment_file(path), out)
            except (InputError, OSError) as error:
                print(f"error: {error}", file=sys.stderr)
                failed += 1
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
    from mineral_stance.annotations import label_counts, load_records

    table = label_counts(load_records(args.file))
    print(table.T.to_string() if args.transpose else table.to_string())
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
    if args.show_disagreements:
        for item in result.disagreements:
            print(f"\n{item['id']}  {item['text']}")
            print(f"  first:  {item['first']}\n  second: {item['second']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train on the gold file; thresholds and card metrics come from a leave-one-doc-out run."""
    import json

    from mineral_stance.annotations import file_sha256, labelled_dataset, load_records
    from mineral_stance.evaluate import bootstrap_intervals, leave_one_document_out, score
    from mineral_stance.predict import StanceClassifier
    from mineral_stance.report import describe_training, write_model_card
    from mineral_stance.train import tune_thresholds

    config = TrainConfig.from_toml(args.config)
    records = load_records(args.gold)
    texts, targets, doc_ids = labelled_dataset(records)
    oof, decisions, _ = leave_one_document_out(
        lambda: StanceClassifier(config),
        texts,
        targets,
        doc_ids,
        on_fold=lambda document: print(f"cross-validation: holding out {document}", flush=True),
    )
    metrics = score(targets, decisions)
    intervals = bootstrap_intervals(targets, decisions)
    thresholds = tune_thresholds(oof.claims, targets.claims)
    print("training on all sentences", flush=True)
    classifier = StanceClassifier(config).fit(texts, targets, progress=True)
    classifier.claim_thresholds = thresholds
    out = Path(args.output)
    classifier.save_pretrained(out)
    write_model_card(
        out,
        {
            "trained": describe_training(config),
            "base_model": config.base_model,
            "thresholds": ", ".join(f"{t:.2f}" for t in thresholds),
            "data_sha256": file_sha256(args.gold),
            "n": len(records),
            "documents": ", ".join(dict.fromkeys(doc_ids)),
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
        json.dumps({"leave_one_document_out": metrics, "bootstrap_95": intervals}, indent=2),
        encoding="utf-8",
    )
    print(
        f"saved to {out}; LODO macro-F1 claims {metrics['claim_types']['macro_f1']:.3f}, "
        f"stance {metrics['stance']['macro_f1']:.3f}, voice {metrics['voice']['macro_f1']:.3f}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on any schema file, taking each record's text as one sentence."""
    import json

    from mineral_stance.annotations import load_records
    from mineral_stance.evaluate import score
    from mineral_stance.labels import targets_from_records
    from mineral_stance.predict import load_classifier
    from mineral_stance.report import html_report

    records = load_records(args.gold)
    classifier = load_classifier(args.model)
    probabilities = classifier.predict_proba([r["text"] for r in records])
    metrics = score(
        targets_from_records(records), probabilities.decide(classifier.claim_thresholds)
    )
    html_path = Path(args.html) if args.html else Path(args.gold).with_suffix(".report.html")
    html_path.write_text(
        html_report(metrics, source=str(args.gold), model=str(args.model or SHIPPED_MODEL_DIR)),
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
        print(f"HTML report: {html_path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Every system, leave-one-document-out, in one table (Markdown, JSON, PNG)."""
    from mineral_stance.annotations import file_sha256, labelled_dataset, load_records
    from mineral_stance.baselines import (
        EmbeddingBaseline,
        MajorityBaseline,
        RulesBaseline,
        SetFitBaseline,
        TfidfBaseline,
    )
    from mineral_stance.evaluate import run_comparison
    from mineral_stance.predict import StanceClassifier
    from mineral_stance.report import (
        comparison_markdown,
        confusion_markdown,
        plot_comparison,
        plot_confusion,
        write_json,
    )

    texts, targets, doc_ids = labelled_dataset(load_records(args.gold))
    systems = {
        "majority": MajorityBaseline,
        "rules": RulesBaseline,
        "tfidf-char-lr": TfidfBaseline,
        "e5-frozen-lr": lambda: EmbeddingBaseline(TrainConfig().base_model),
    }
    if importlib.util.find_spec("setfit") is not None:
        # 60 contrastive steps: what five folds of SetFit afford on a 2-core CPU
        systems["setfit"] = lambda: SetFitBaseline(TrainConfig().base_model, max_steps=60)
    for config_path in args.configs:
        config = TrainConfig.from_toml(config_path)
        kind = "linear probe" if config.is_linear_probe else "fine-tuned"
        systems[f"{kind} ({Path(config_path).stem})"] = lambda config=config: StanceClassifier(
            config
        )
    if args.only:
        systems = {k: v for k, v in systems.items() if any(o in k for o in args.only)}
    results = run_comparison(systems, texts, targets, doc_ids, log=lambda m: print(m, flush=True))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_json({"gold_sha256": file_sha256(args.gold), "systems": results}, out / "comparison.json")
    plot_comparison(results, out / "comparison.png")
    sections = [
        "# Leave-one-document-out comparison",
        "",
        f"Gold: `{args.gold}` ({len(texts)} sentences, 5 documents). "
        "Each system is trained on four seed articles and scored on the fifth; "
        "scores are pooled over the five held-out articles. Claim thresholds of "
        "tuned systems are chosen on the other documents' out-of-fold predictions. "
        "95% intervals: 1000 bootstrap resamples of sentences. "
        "The rules and the textual cues (`mineral_stance/cues.py`) are fixed patterns "
        "taken from the label schema, never fitted per fold, but they were written "
        "and corrected while reading these five articles, so the scores of the rules "
        "and of every system that reads the cues are optimistic for unseen outlets.",
        "",
        "Made by: `mineral-stance compare " + " ".join(args.configs) + "`",
        "",
        comparison_markdown(results),
        "",
        "![macro-F1 per task](comparison.png)",
    ]
    for name, result in results.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        plot_confusion(result["metrics"], name, out / f"confusion-{slug}.png")
        sections += ["", f"## Stance confusion: {name}", "", confusion_markdown(result["metrics"])]
    (out / "comparison.md").write_text("\n".join(sections) + "\n", encoding="utf-8")
    print(f"wrote {out / 'comparison.md'}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Label every sentence of many articles; one output table, per-article summaries."""
    from tqdm.auto import tqdm

    from mineral_stance.batch import (
        BatchCounts,
        RecordWriter,
        append_target,
        chunks_of_articles,
        finish_parquet,
        finished_doc_ids,
        output_format,
        read_output,
        repair_interrupted,
        write_summaries,
    )
    from mineral_stance.inputs import InputProblem, iter_articles
    from mineral_stance.predict import load_classifier

    if args.engine == "ray":
        return classify_on_ray(args)
    out = Path(args.output) if args.output else None
    suffix = output_format(out)
    if out is None and args.resume:
        raise ValueError("--resume needs an output file (-o)")
    if out is not None and out.exists() and not (args.resume or args.overwrite):
        raise ValueError(
            f"{out} exists; use --resume to add the remaining articles or --overwrite to replace it"
        )
    if out is not None and args.overwrite:
        for path in (out, append_target(out)):
            path.unlink(missing_ok=True)
    done_before: set[str] = set()
    if out is not None and args.resume:
        cut = repair_interrupted(append_target(out))
        if cut is not None:
            print(f"{out}: article {cut!r} was cut off and will be redone", file=sys.stderr)
        done_before = finished_doc_ids(out)

    classifier = load_classifier(
        args.model, threads=args.threads, backend=args.backend, precision=args.precision
    )
    classifier.batch_size = args.batch_size
    counts = BatchCounts()

    def articles():
        for item in iter_articles(
            args.paths,
            text_field=args.text_field,
            id_field=args.id_field,
            text_column=args.text_column,
        ):
            if isinstance(item, InputProblem):
                counts.failed += 1
                tqdm.write(f"error: {item}", file=sys.stderr)
            elif item.doc_id in done_before:
                counts.skipped += 1
            else:
                yield item

    writer = RecordWriter(append_target(out) if out else None)
    progress = tqdm(desc="classifying", unit=" articles", file=sys.stderr, disable=args.quiet)
    try:
        for chunk in chunks_of_articles(articles()):
            groups = classifier.classify_unit_groups([units for _, units in chunk])
            for (article, _), records in zip(chunk, groups, strict=True):
                for record in records:
                    record["source"] = article.source
                if records:
                    writer.write_article(records)
                counts.done += 1
                counts.sentences += len(records)
                progress.update(1)
    finally:
        progress.close()
        writer.close()
        if out is not None and suffix == ".parquet":
            finish_parquet(out)
    if args.summary:
        if out is None:
            raise ValueError("--summary needs an output file (-o)")
        n = write_summaries(read_output(out), Path(args.summary))
        print(f"wrote {n} article summaries to {args.summary}", file=sys.stderr)
    print(counts.final_line(), file=sys.stderr)
    return 1 if counts.failed else 0


def classify_on_ray(args: argparse.Namespace) -> int:
    """``classify --engine ray``: the same records, as shards in the folder -o (ray_engine)."""
    from mineral_stance.batch import write_summaries
    from mineral_stance.ray_engine import classify_with_ray, read_shards, shard_paths

    if not args.output:
        raise ValueError("--engine ray needs an output folder (-o DIR) for its shards")
    out = Path(args.output)
    if args.overwrite:
        for shard in shard_paths(out):
            shard.unlink()
    counts = classify_with_ray(
        args.paths,
        out,
        model=args.model,
        backend=args.backend,
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
    )
    if args.summary:
        n = write_summaries(read_shards(out), Path(args.summary))
        print(f"wrote {n} article summaries to {args.summary}", file=sys.stderr)
    print(counts.final_line(), file=sys.stderr)
    return 1 if counts.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mineral-stance",
        description="Label claims, stance toward the US-led minerals alliance, and voice, "
        "sentence by sentence, in Chinese and English commentary.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="clean and split articles into sentence units")
    segment.add_argument("files", nargs="*", help="article files (default: the seed articles)")
    segment.add_argument("-o", "--output", help="write JSON Lines here instead of stdout")
    segment.set_defaults(run=cmd_segment)

    validate = commands.add_parser("validate", help="check annotation files against the schema")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(run=cmd_validate)

    stats = commands.add_parser("stats", help="label counts per document")
    stats.add_argument("file", nargs="?", default=str(GOLD_PATH))
    stats.add_argument("--transpose", action="store_true", help="documents as columns")
    stats.set_defaults(run=cmd_stats)

    agree = commands.add_parser("agreement", help="Cohen's kappa between two annotation files")
    agree.add_argument("first", nargs="?", default=str(FIRST_PASS_PATH))
    agree.add_argument("second", nargs="?", default=str(SECOND_PASS_PATH))
    agree.add_argument("--show-disagreements", action="store_true")
    agree.add_argument(
        "--exclude-codebook-examples",
        action="store_true",
        help="leave out sentences quoted as examples in GUIDELINES.md",
    )
    agree.set_defaults(run=cmd_agreement)

    classify = commands.add_parser(
        "classify",
        help="label every sentence of articles (files, folders, globs, - for stdin)",
        description="Exit status: 0 when every input was read, 1 when any input failed "
        "(the batch still finishes), 2 on a usage error.",
    )
    classify.add_argument("paths", nargs="+", help="files, directories, globs, or - for stdin")
    classify.add_argument(
        "-o", "--output", help="output .jsonl (default: stdout), .csv or .parquet"
    )
    classify.add_argument("--summary", help="write per-article summaries here (.jsonl or .csv)")
    classify.add_argument("--model", help="model directory (default: the shipped model)")
    classify.add_argument("--batch-size", type=int, default=64)
    classify.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the idle cores)"
    )
    classify.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="run the encoder with torch or ONNX Runtime (the [onnx] extra; faster)",
    )
    classify.add_argument(
        "--precision", choices=("fp32", "int8"), default=None, help="ONNX weights (default fp32)"
    )
    classify.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="'ray': a Ray Data pipeline (the [ray] extra) on RAY_ADDRESS or a local Ray",
    )
    classify.add_argument(
        "--shard-format", choices=("parquet", "jsonl"), default="parquet", help="Ray output"
    )
    classify.add_argument("--actors", type=int, default=None, help="Ray labelling actors")
    classify.add_argument(
        "--ray-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)"
    )
    classify.add_argument("--resume", action="store_true", help="skip articles already in -o")
    classify.add_argument("--overwrite", action="store_true", help="replace an existing -o")
    classify.add_argument("--text-field", default="text", help="text field of .jsonl input")
    classify.add_argument("--id-field", default=None, help="id field/column of .jsonl/.csv input")
    classify.add_argument("--text-column", default="text", help="text column of .csv input")
    classify.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    classify.set_defaults(run=cmd_classify)

    train = commands.add_parser("train", help="fine-tune the model from a config in training/")
    train.add_argument("--config", default=SHIPPED_CONFIG)
    train.add_argument("--gold", default=str(GOLD_PATH))
    train.add_argument("-o", "--output", default=str(SHIPPED_MODEL_DIR))
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a model on an annotation file")
    evaluate.add_argument("gold", help="JSON Lines in the label schema")
    evaluate.add_argument("--model", help="model directory (default: the shipped model)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--html", help="where to write the HTML report")
    evaluate.set_defaults(run=cmd_evaluate)

    compare = commands.add_parser(
        "compare", help="leave-one-document-out comparison of baselines and fine-tuned models"
    )
    compare.add_argument("configs", nargs="*", default=list(COMPARED_CONFIGS))
    compare.add_argument("--gold", default=str(GOLD_PATH))
    compare.add_argument("-o", "--output", default=str(REPORTS_DIR))
    compare.add_argument("--only", nargs="*", help="run only systems whose name contains these")
    compare.set_defaults(run=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, ImportError) as error:  # usage, or an optional extra not installed
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
