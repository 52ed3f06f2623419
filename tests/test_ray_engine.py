"""The Ray engine writes the local engine's records, as resumable shards."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import ray

from mineral_stance import model_files
from mineral_stance.cli import main
from mineral_stance.corpus import seed_paths
from mineral_stance.ray_engine import read_shards, shard_paths


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module, as on a 2-core laptop."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def normalise(records: pd.DataFrame) -> tuple[list[dict], np.ndarray]:
    """Records sorted by unit without their probabilities, and the probabilities apart
    (absent, NaN, for units the model does not label)."""
    rows = sorted(records.to_dict("records"), key=lambda r: (r["doc_id"], r["index"]))
    columns = sorted(k for k in records.columns if k.startswith("p_"))
    labels = [
        {k: list(v) if k == "claim_types" else v for k, v in r.items() if not k.startswith("p_")}
        for r in rows
    ]
    probabilities = np.array([[r.get(k, np.nan) for k in columns] for r in rows], dtype=float)
    return labels, probabilities


def assert_same_records(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual_labels, actual_p = normalise(actual)
    expected_labels, expected_p = normalise(expected)
    assert actual_labels == expected_labels
    # the same model; only batch composition (padding) differs, so float noise alone
    np.testing.assert_allclose(actual_p, expected_p, atol=2e-4)


def test_ray_records_equal_the_local_records_and_resume(
    tiny_model_dir, tmp_path, local_ray, capsys, monkeypatch
):
    seeds = [str(p) for p in seed_paths()]
    local = tmp_path / "local.jsonl"
    assert main(["classify", *seeds, "--model", str(tiny_model_dir), "-o", str(local), "-q"]) == 0
    shards = tmp_path / "shards"
    args = ["classify", *seeds, "--model", str(tiny_model_dir), "-o", str(shards), "-q"]
    assert (
        main([*args, "--engine", "ray", "--actors", "1", "--summary", str(tmp_path / "s.csv")]) == 0
    )
    expected = pd.DataFrame([json.loads(line) for line in local.read_text().splitlines()])
    assert_same_records(read_shards(shards), expected)
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(seeds)
    assert "5 article(s) done" in capsys.readouterr().err

    # an existing output is never overwritten without --resume or --overwrite
    assert main([*args, "--engine", "ray"]) == 2
    # a lost shard: --resume redoes only its articles, nothing is duplicated
    first = shard_paths(shards)[0]
    lost = set(pd.read_parquet(first)["doc_id"])
    first.unlink()
    assert main([*args, "--engine", "ray", "--resume", "--shard-format", "jsonl"]) == 0
    err = capsys.readouterr().err
    assert f"{len(lost)} article(s) done, {len(seeds) - len(lost)} skipped" in err
    assert_same_records(read_shards(shards), expected)

    # --overwrite that fails in the middle (here: the actors find a model without its heads)
    # leaves the old shards as they were
    (shards / "notes.txt").write_text("the user's own file", encoding="utf-8")
    before = {path.name: path.read_bytes() for path in shard_paths(shards)}
    headless = tmp_path / "headless-model"
    shutil.copytree(tiny_model_dir, headless)
    (headless / "heads.safetensors").unlink()
    broken = [str(headless) if a == str(tiny_model_dir) else a for a in args]
    # the driver refuses it before Ray runs anything ...
    assert main([*broken, "--engine", "ray", "--overwrite"]) == 2
    assert "heads.safetensors" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in shard_paths(shards)} == before
    # ... and when the actors are the first to find it (the driver's check skipped here),
    # the run fails in the middle and the old shards still stand
    monkeypatch.setattr(model_files, "validate_model_dir", lambda directory: None)
    with pytest.raises(Exception, match="heads"):
        main([*broken, "--engine", "ray", "--overwrite"])
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in shard_paths(shards)} == before
    # one that succeeds replaces them: new shards, the same records once, the user's file kept
    assert main([*args, "--engine", "ray", "--overwrite"]) == 0
    assert not {path.name for path in shard_paths(shards)} & set(before)
    assert_same_records(read_shards(shards), expected)
    assert (shards / "notes.txt").read_text(encoding="utf-8") == "the user's own file"
    assert not list(tmp_path.glob(".shards.*"))  # no staging or replaced folder left behind


def test_ray_engine_reports_bad_inputs_and_refuses_stdin(
    tiny_model_dir, tmp_path, local_ray, capsys
):
    good = tmp_path / "a.txt"
    good.write_text("美国应与盟友合作，确保供应链安全。\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    status = main(
        [
            "classify",
            str(good),
            str(empty),
            "--model",
            str(tiny_model_dir),
            "-o",
            str(out),
            "--engine",
            "ray",
            "--shard-format",
            "jsonl",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and "empty.txt" in err and "1 article(s) done, 0 skipped, 1 failed" in err
    assert list(read_shards(out)["doc_id"]) == ["a"]
    assert main(["classify", "-", "-o", str(tmp_path / "x"), "--engine", "ray"]) == 2


def test_ray_engine_refuses_a_broken_model_before_starting(tiny_model_dir, tmp_path, capsys):
    """A model directory that cannot load is named in one line; Ray never starts."""
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    article = tmp_path / "a.txt"
    article.write_text("美国应与盟友合作，确保供应链安全。\n", encoding="utf-8")
    ray.shutdown()
    status = main(
        ["classify", str(article), "--model", str(broken), "-o", str(tmp_path / "out"),
         "--engine", "ray", "-q"]
    )
    err = capsys.readouterr().err
    assert status == 2 and "config.json" in err and "Traceback" not in err
    assert not ray.is_initialized() and not (tmp_path / "out").exists()
