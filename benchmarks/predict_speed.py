"""Throughput, agreement, cold start and memory of every way to label sentences.

The judge of issue 12. On the units of the five seed articles (661, segmented by
the project's segmenter), in one process and interleaved rounds (so machine
noise hits every method alike):

- ``pipeline b1`` / ``pipeline b32``: the transformers feature-extraction
  pipeline on the model's encoder at batch 1 and 32, then pooling and the heads:
  what a user would write with transformers alone;
- ``plain forward``: a hand-written forward pass (tokenize, encoder, heads under
  ``inference_mode``) over batches of 64 sorted by token count;
- ``clf.predict <backend>``: the classifier on each backend (torch, onnx fp32,
  onnx int8).

For each: sentences per wall-clock second and per CPU-second of this process
(min and median over rounds), and how many labels per task each backend
changes against fp32 torch. Then, in fresh subprocesses with a warm cache:
cold start (process start to the first label) and peak RSS while labelling 661
and 6,610 sentences (the seed units ten times). The load average of the machine
is recorded, since other processes share its cores.

    python benchmarks/predict_speed.py [--rounds 3] [--threads N] [--skip-pipeline]

Writes ``benchmarks/results/predict_speed.json`` and ``predict_speed.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BACKENDS = {"torch": ("torch", None), "onnx fp32": ("onnx", "fp32"), "onnx int8": ("onnx", "int8")}
# the backend the targets apply to: the fast one a user is told to pick
DEFAULT_FAST = "onnx fp32"
TARGETS = {"speedup_per_cpu_second": 5.0, "cold_start_seconds": 3.0, "peak_rss_mb": 700.0}
SIZES = (661, 6610)


def seed_units(n: int = 661) -> tuple[list[str], list]:
    """n seed units (the 661 repeated as needed) and their contexts, as ``classify`` gives them:
    each copy of an article is an article of its own, so the article vectors are real."""
    from mineral_stance.context import contexts_of_units
    from mineral_stance.corpus import seed_paths, segment_file

    texts, doc_ids = [], []
    for copy in range(n // 661 + 1):
        for path in seed_paths():
            for unit in segment_file(path):
                texts.append(unit.text)
                doc_ids.append(f"{path.name}#{copy}")
    texts, doc_ids = texts[:n], doc_ids[:n]
    return texts, contexts_of_units(texts, [""] * n, doc_ids)


def labels(clf, probabilities) -> dict[str, np.ndarray]:
    decided = probabilities.decide(clf.claim_thresholds)
    return {"claim_types": decided.claims, "stance": decided.stance, "voice": decided.voice}


def changed(a: dict, b: dict) -> dict[str, int]:
    out = {}
    for task in a:
        differs = a[task] != b[task]
        out[task] = int(differs.any(axis=1).sum() if differs.ndim == 2 else differs.sum())
    return out


# --- The methods, each a function of the sentences ------------------------------------


def make_pipeline_method(clf, batch_size: int):
    import torch
    from transformers import pipeline

    from mineral_stance.model import convert_script

    model, config = clf.model, clf.model.config
    extractor = pipeline(
        "feature-extraction", model=model.encoder, tokenizer=clf.tokenizer, device="cpu"
    )

    def run(texts: list[str], contexts: list) -> None:
        inputs = [config.text_prefix + t for t in convert_script(texts, config.script)]
        states = extractor(
            inputs,
            batch_size=batch_size,
            return_tensors=True,
            tokenize_kwargs={"truncation": True, "max_length": config.max_length},
        )
        with torch.inference_mode():
            pooled = torch.cat(
                [model.pool(state, torch.ones(state.shape[:2], dtype=torch.long))
                 for state in states]
            )
            model.classify(pooled, model.text_cues(texts), model.article_input(pooled, contexts))

    return run


def make_plain_forward(clf, batch_size: int = 64):
    import torch

    from mineral_stance.context import token_sorted_batches
    from mineral_stance.model import convert_script

    model, config = clf.model, clf.model.config

    def run(texts: list[str], contexts: list) -> None:
        converted = convert_script(texts, config.script)
        rows, parts = [], []
        with torch.inference_mode():
            for batch, inputs in token_sorted_batches(
                clf.tokenizer, converted, None, config.text_prefix, config.max_length,
                "none", 0, batch_size,
            ):
                ids = torch.from_numpy(inputs["input_ids"])
                mask = torch.from_numpy(inputs["attention_mask"])
                states = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                rows.extend(batch)
                parts.append(model.pool(states, mask))
            pooled = torch.cat(parts)[np.argsort(rows)]  # back in input order
            logits = model.classify(
                pooled, model.text_cues(texts), model.article_input(pooled, contexts)
            )
            torch.sigmoid(logits["claims"]), torch.softmax(logits["stance"], -1)

    return run


# --- Subprocess measurements: cold start and peak RSS ------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(backend: str, precision: str | None, n: int, threads: int | None, start: float) -> None:
    """Run in a fresh process: load, label one sentence, then n sentences; print JSON."""
    from mineral_stance.predict import load_classifier

    texts, contexts = seed_units(n)
    clf = load_classifier(threads=threads, backend=backend, precision=precision)
    clf.predict(texts[:1], contexts=contexts[:1])
    cold_start = time.time() - start
    wall, cpu = time.perf_counter(), time.process_time()
    clf.predict(texts, contexts=contexts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = peak_rss_mb()
    # what the predict path pulled in: the ONNX backend should need none of these
    heavy = [name for name in ("torch", "transformers", "spacy") if name in sys.modules]
    print(
        json.dumps(
            {
                "cold_start_s": cold_start,
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mb": peak_mb,
                "heavy_imports": heavy,
            }
        )
    )


def run_child(name: str, n: int, threads: int | None) -> dict:
    backend, precision = BACKENDS[name]
    command = [sys.executable, __file__, "--child", backend, precision or "", str(n)]
    if threads:
        command += ["--threads", str(threads)]
    start = time.time()
    output = subprocess.run(
        [*command, "--start", repr(start)], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["sentences_per_second"] = round(n / result["wall_s"], 1)
    result["sentences_per_cpu_second"] = round(n / result["cpu_s"], 1)
    return result


# --- Report ---------------------------------------------------------------------------


def summary(n: int, walls: list[float], cpus: list[float]) -> dict:
    return {
        "sentences_per_second": {
            "min": round(n / max(walls), 1),
            "median": round(n / statistics.median(walls), 1),
        },
        "sentences_per_cpu_second": {
            "min": round(n / max(cpus), 1),
            "median": round(n / statistics.median(cpus), 1),
        },
        "seconds_per_round": [round(w, 2) for w in walls],
    }


def table(result: dict) -> str:
    lines = [
        "| method | sent/s median (min) | sent/CPU-s median (min) | labels changed vs torch "
        "(claims/stance/voice of 661) |",
        "|---|---|---|---|",
    ]
    for name, m in result["methods"].items():
        agreement = result["labels_changed_vs_torch"].get(name)
        changes = "/".join(str(agreement[t]) for t in agreement) if agreement else "–"
        lines.append(
            f"| {name} | {m['sentences_per_second']['median']} ({m['sentences_per_second']['min']})"
            f" | {m['sentences_per_cpu_second']['median']} ({m['sentences_per_cpu_second']['min']})"
            f" | {changes} |"
        )
    sizes = sorted({n for runs in result["subprocess"].values() for n in runs}, key=int)
    header = "| backend (fresh process) | cold start s | " + " | ".join(
        f"peak RSS MB @{n} | sent/s @{n} | sent/CPU-s @{n}" for n in sizes
    )
    lines += ["", header + " | imports |", "|---" * (3 + 3 * len(sizes)) + "|"]
    for name, runs in result["subprocess"].items():
        cells = [f"{min(r['cold_start_s'] for r in runs.values()):.1f}"]
        for n in sizes:
            run = runs.get(n)
            cells += (
                [
                    f"{run['peak_mb']:.0f}",
                    str(run["sentences_per_second"]),
                    str(run["sentences_per_cpu_second"]),
                ]
                if run
                else ["–"] * 3
            )
        heavy = sorted({m for r in runs.values() for m in r.get("heavy_imports", [])})
        cells.append(", ".join(heavy) or "no torch, transformers, spaCy")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["methods"])
    per_cpu = [result["methods"][n]["sentences_per_cpu_second"]["median"] for n in names]
    per_wall = [result["methods"][n]["sentences_per_second"]["median"] for n in names]
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, values, title in (
        (axes[0], per_wall, "sentences per second (median)"),
        (axes[1], per_cpu, "sentences per CPU-second (median)"),
    ):
        axis.barh(names, values, color="#4c72b0")
        axis.set_title(title)
        axis.invert_yaxis()
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.0f}", va="center")
    load = result["load_average"]
    figure.suptitle(
        f"{result['sentences']} seed units, {result['threads']} thread(s), "
        f"load average {load['start'][0]:.1f}→{load['end'][0]:.1f}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: the idle cores")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="subprocess runs")
    parser.add_argument("--sentences", type=int, default=None, help="first N seed units only")
    parser.add_argument(
        "--torch-sizes", type=int, nargs="+", default=None, help="subprocess runs of torch"
    )
    parser.add_argument("--output", default=str(RESULTS_DIR / "predict_speed.json"))
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "PRECISION", "N"))
    parser.add_argument("--start", type=float)
    args = parser.parse_args()
    if args.child:
        backend, precision, n = args.child
        child(backend, precision or None, int(n), args.threads, args.start)
        return

    from mineral_stance.config import inference_threads
    from mineral_stance.predict import load_classifier

    load_start = os.getloadavg()
    threads = inference_threads(args.threads)
    texts, contexts = seed_units(args.sentences or 661)
    classifiers = {
        name: load_classifier(threads=threads, backend=b, precision=p)
        for name, (b, p) in BACKENDS.items()
    }
    torch_clf = classifiers["torch"]
    methods = {}
    if not args.skip_pipeline:
        methods["pipeline b1"] = make_pipeline_method(torch_clf, 1)
        methods["pipeline b32"] = make_pipeline_method(torch_clf, 32)
    methods["plain forward"] = make_plain_forward(torch_clf)
    for name, clf in classifiers.items():
        methods[f"clf.predict {name}"] = clf.predict
    for method in methods.values():  # warm-up
        method(texts[:32], contexts[:32])

    walls: dict[str, list[float]] = {name: [] for name in methods}
    cpus: dict[str, list[float]] = {name: [] for name in methods}
    round_loads = []
    for round_number in range(args.rounds):
        for name, method in methods.items():
            wall, cpu = time.perf_counter(), time.process_time()
            method(texts, contexts)
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
        round_loads.append(os.getloadavg()[0])
        print(f"round {round_number + 1}: load {round_loads[-1]:.1f}", flush=True)

    reference = labels(torch_clf, torch_clf.predict_proba(texts, contexts=contexts))
    agreement = {
        f"clf.predict {name}": changed(
            labels(clf, clf.predict_proba(texts, contexts=contexts)), reference
        )
        for name, clf in classifiers.items()
        if name != "torch"
    }
    del classifiers, methods, torch_clf
    subprocess_runs = {
        name: {
            str(n): run_child(name, n, threads)
            for n in (args.torch_sizes if name == "torch" and args.torch_sizes else args.sizes)
        }
        for name in BACKENDS
    }
    result = {
        "command": "python benchmarks/predict_speed.py " + " ".join(sys.argv[1:]),
        "sentences": len(texts),
        "rounds": args.rounds,
        "threads": threads,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "usable_cpus": len(os.sched_getaffinity(0)),
        },
        "load_average": {
            "start": load_start,
            "after_each_round": round_loads,
            "end": os.getloadavg(),
        },
        "methods": {name: summary(len(texts), walls[name], cpus[name]) for name in walls},
        "labels_changed_vs_torch": agreement,
        "labels_changed_limit": int(0.01 * len(texts)),
        "subprocess": subprocess_runs,
    }
    result["targets"] = check_targets(result)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, output.with_suffix(".png"))
    print(table(result))
    print(json.dumps(result["targets"], indent=2))


def check_targets(result: dict) -> dict:
    """Each target of the issue, for the fast default backend: value, target, met."""
    fast = result["methods"][f"clf.predict {DEFAULT_FAST}"]["sentences_per_cpu_second"]["median"]
    pipeline = [
        m["sentences_per_cpu_second"]["median"]
        for name, m in result["methods"].items()
        if name.startswith("pipeline")
    ]
    runs = result["subprocess"][DEFAULT_FAST]
    values = {
        "speedup_per_cpu_second": round(fast / max(pipeline), 2) if pipeline else None,
        "cold_start_seconds": round(min(r["cold_start_s"] for r in runs.values()), 2),
        "peak_rss_mb": round(max(r["peak_mb"] for r in runs.values()), 0),
    }
    out = {"backend": DEFAULT_FAST}
    for name, target in TARGETS.items():
        value = values[name]
        met = (
            None
            if value is None
            else (value >= target if name.startswith("speed") else value <= target)
        )
        out[name] = {"value": value, "target": target, "met": met}
    return out


if __name__ == "__main__":
    main()
