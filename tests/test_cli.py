"""The `recsys` command line against a real ingested ML-100K home."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECSYS = [sys.executable, "-m", "ui.cli"]
REPO = Path(__file__).resolve().parent.parent


def run(args, home, **kw):
    env = {**os.environ, "RECSYS_HOME": str(home.root), "RECSYS_DATASET": "ml-100k"}
    return subprocess.run(RECSYS + args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, **kw)


def test_recommend_json_fills_every_field(ml100k):
    home, _, _ = ml100k
    proc = run(["recommend", "--json", "--k", "5", "--user", "7", "scary movies from the 80s"], home)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["items"]) == 5
    for item in out["items"]:
        assert set(item) == {"item_id", "title", "year", "genres", "score", "explanation"}
        assert "Horror" in item["genres"] and 1980 <= item["year"] <= 1989
        assert item["title"] and item["explanation"] and isinstance(item["score"], float)
    assert {"parse_ms", "embed_ms", "retrieve_ms", "total_ms"} <= set(out["timings_ms"])


def test_batch_keeps_order_and_reports_bad_lines(ml100k, tmp_path):
    home, _, _ = ml100k
    batch = tmp_path / "q.jsonl"
    lines = [{"q": "a western before 1960"}, {"q": "no horror, 90s comedy", "user": "1"}, {"q": ""},
             {"q": "sci-fi", "user": "nobody"}, {"q": "1995 to 1998 drama", "k": 3}]
    batch.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    proc = run(["recommend", "--batch", str(batch), "--json"], home)
    results = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 1 and len(results) == 6
    assert all("Western" in i["genres"] and i["year"] < 1960 for i in results[0]["items"])
    assert all("Comedy" in i["genres"] and "Horror" not in i["genres"] for i in results[1]["items"])
    assert "line 3" in results[2]["error"] and "empty" in results[2]["error"]
    assert "unknown user 'nobody'" in results[3]["error"]
    assert len(results[4]["items"]) == 3
    assert "line 6" in results[5]["error"]


def test_errors_are_one_clear_line(ml100k, tmp_path):
    home, _, _ = ml100k
    proc = run(["recommend", "--user", "nobody", "comedy"], home)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "unknown user 'nobody'" in proc.stderr
    proc = run(["recommend", "--k", "0", "comedy"], home)
    assert proc.returncode == 2 and "k must be" in proc.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,title\nx,\n")
    proc = run(["ingest", "--catalog", str(bad)], home)
    assert proc.returncode == 2 and "bad.csv:2: missing required field 'title'" in proc.stderr


def test_a_negative_lora_depth_is_refused_before_any_work(ml100k):
    home, _, _ = ml100k
    registry_before = sorted(p.name for p in (home.root / "adapters").glob("*")) if (home.root / "adapters").exists() else []
    proc = run(["refresh", "--lora-layers", "-3"], home)
    assert proc.returncode == 2 and "--lora-layers: must be 0 or more, got -3" in proc.stderr
    proc = run(["eval", "--protocol", "temporal", "--refresh-lora-layers", "-1"], home)
    assert proc.returncode == 2 and "--refresh-lora-layers: must be 0 or more, got -1" in proc.stderr
    after = sorted(p.name for p in (home.root / "adapters").glob("*")) if (home.root / "adapters").exists() else []
    assert after == registry_before
    assert not (home.root / "eval").exists() or not any((home.root / "eval").glob("temporal-work-*"))


def test_refresh_options_default_to_the_refresh_config():
    from assistant.refresh_config import RefreshConfig
    from ui.cli import build_parser
    from ui.cli_admin import refresh_config

    assert refresh_config(build_parser().parse_args(["refresh"])) == RefreshConfig()
    chosen = refresh_config(build_parser().parse_args(["refresh", "--lora-layers", "0", "--budget-minutes", "0",
                                                       "--gate-minutes", "3", "--tolerance", "0.05",
                                                       "--replay-check", "interval"]))
    assert (chosen.fresh_lora_layers, chosen.budget_minutes, chosen.gate_minutes, chosen.tolerance,
            chosen.replay_check) == (None, None, 3.0, 0.05, "interval")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["refresh", "--replay-check", "median"])
    with pytest.raises(ValueError, match="replay_check must be one of point, interval"):
        RefreshConfig(replay_check="median")
    evaluation = build_parser().parse_args(["eval", "--protocol", "temporal"])
    assert (evaluation.refresh_minutes, evaluation.refresh_lora_layers) == (RefreshConfig.minutes,
                                                                            RefreshConfig.fresh_lora_layers)


def test_the_temporal_feedback_source_options_are_the_protocol_s():
    from assistant.temporal_eval import FEEDBACK_FROM
    from ui.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval", "--protocol", "temporal"]).feedback_from.replace("-", " ") == FEEDBACK_FROM[0]
    for source in FEEDBACK_FROM:  # every source the protocol knows can be chosen, under its dashed name
        dashed = source.replace(" ", "-")
        assert parser.parse_args(["eval", "--feedback-from", dashed]).feedback_from.replace("-", " ") == source
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--feedback-from", "everyone"])


def test_the_temporal_protocol_refreshes_once_unless_asked_every_n_events():
    from ui.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval", "--protocol", "temporal"]).refresh_every == 0
    assert parser.parse_args(["eval", "--refresh-every", "4000"]).refresh_every == 4000
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--refresh-every", "-5"])
