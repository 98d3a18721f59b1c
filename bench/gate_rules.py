"""A refresh gate's decision again, on the very lists it scored, under each rule for choosing the fusion weight.

A refresh keeps every list its gate scored (`gate_lists.json` in the adapter version; the temporal
protocol copies it beside its result as `<result>_gate_lists.json`): the candidate's LM scores, the
retriever feature, the target, the user's gate fold and the serving version's NDCG@10. Scoring is
the gate's whole cost, so any rule for choosing the weight can be replayed here in a second:

- `pooled`: the weight ranking feedback and replay lists best, pooled (the rule the refresh uses);
- `feedback`: the weight ranking the fold's feedback lists best (the rule before it);
both within half the replay tolerance, each fold judged with the weight chosen on the other fold.

    .venv/bin/python bench/gate_rules.py PATH_gate_lists.json [--seed S] [--tolerance 0.02] [--cap-per-user N] [--json OUT]

`--seed`: the refresh's seed (a temporal run's `--seed`); with it the bootstrap intervals are the gate's own.

`--cap-per-user N` keeps only each user's first N held-out lists in the order the gate scored them
(a random order): how the decision would look had the gate spread its lists over users.

The decision is the refresh's own gate (`gate_decision`: the pooled-AUC rule since stop 32, its replay
check on the point estimate of the relative replay AUC change since stop 34). Beside it, two rules it
replaced: promote when the held-out feedback lists alone have an AUC interval above zero and an NDCG@10
gain, with the replay check on its interval (until stop 32); and the gate with its replay check on the
low end of the interval of the replay AUC change, a non-inferiority test (until stop 34: at 300 replay
lists that interval's half-width is 1.5-5%, above the 2% tolerance, so it passed only a candidate whose
replay AUC rose).
"""
from __future__ import annotations

import _common  # noqa: F401  (offline switches first)

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from assistant.feedback_training import first_per_user, gate_fold
from assistant.lm_reranking import fit_fusion_weight, fusion_table
from assistant.refresh import FIT_TOLERANCE_SHARE, Judged, RefreshConfig, fit_refresh_fusion, fused_rank, gate_decision
from finetune.training import RerankExample


def feedback_only_fusion(feedback_scores, feedback, replay_scores, replay, tolerance: float) -> dict:
    replay_table = fusion_table(replay_scores, replay) if replay else None

    def keeps_replay(weight: str) -> bool:
        return replay_table is None or replay_table[weight] >= (1.0 - FIT_TOLERANCE_SHARE * tolerance) * replay_table["inf"]

    return fit_fusion_weight(feedback_scores, feedback, allowed=keeps_replay)


RULES = {"pooled": fit_refresh_fusion, "feedback": feedback_only_fusion}


def decide(rows: list[dict], rule, config: RefreshConfig) -> dict:
    lists = {kind: [(np.array(r["lm"]), RerankExample(r["user"], [], ["c"] * len(r["lm"]), r["target"], r["retriever"]),
                     r["serving_rank"]) for r in rows if r["kind"] == kind] for kind in ("held_out", "replay")}
    weights = {}
    for fold in (0, 1):
        other = {kind: [x for x in lists[kind] if gate_fold(x[1].user_id) != fold] for kind in lists}
        weights[fold] = rule([s for s, _, _ in other["held_out"]], [x for _, x, _ in other["held_out"]],
                             [s for s, _, _ in other["replay"]], [x for _, x, _ in other["replay"]],
                             config.tolerance)["weight"]

    def judged(kind):
        return Judged(np.array([fused_rank(s, x, weights[gate_fold(x.user_id)]) for s, x, _ in lists[kind]]),
                      np.array([r for _, _, r in lists[kind]]), np.array([len(x.candidates) for _, x, _ in lists[kind]]),
                      tuple(x.user_id for _, x, _ in lists[kind]))

    held, replay = judged("held_out"), judged("replay")
    gate = gate_decision(held, replay, config)
    replay_interval = gate_decision(held, replay, replace(config, replay_check="interval"))
    served = rule([s for s, _, _ in lists["held_out"]], [x for _, x, _ in lists["held_out"]],
                  [s for s, _, _ in lists["replay"]], [x for _, x, _ in lists["replay"]], config.tolerance)
    return {"fold_weights": weights, "serving_weight": served["weight"], "decision": gate["decision"],
            "reason": gate["reason"], "held_out_interval_rule": held_out_interval_decision(gate, config),
            "replay_interval_rule": {"decision": replay_interval["decision"], "reason": replay_interval["reason"]}}


def held_out_interval_decision(gate: dict, config: RefreshConfig) -> dict:
    """The gate's rule until stop 32, on the numbers `gate_decision` reported for the same lists: the
    held-out feedback lists' NDCG@10 gain above zero (its default margin then) and their AUC interval
    above zero, with the replay check of its time (the low end of the replay AUC change's interval)."""
    if "held_out_auc" not in gate:  # too few held-out lists or users: the gate decided nothing
        return {"decision": "rejected", "reason": gate["reason"]}
    ndcg, auc = gate["held_out_ndcg@10"], gate["held_out_auc"]
    replay_drop = gate.get("replay_auc", {}).get("largest_relative_drop", 0.0)
    promoted = ndcg["mean_diff"] > 0 and auc["ci_low"] > 0 and replay_drop <= config.tolerance
    return {"decision": "promoted" if promoted else "rejected",
            "reason": f"held-out AUC {auc['mean_diff']:+.4f} [{auc['ci_low']:+.4f}, {auc['ci_high']:+.4f}], "
                      f"NDCG@10 {ndcg['mean_diff']:+.4f}, replay may drop {replay_drop:.1%}"}


def capped_per_user(rows: list[dict], cap: int) -> list[dict]:
    """Replay lists unchanged; of each user's held-out lists, the first `cap` (the refresh's own cap,
    `first_per_user`, on the kept rows), all in the scored order."""
    held = first_per_user([r for r in rows if r["kind"] == "held_out"], cap, user_of=lambda row: row["user"])
    kept = {id(row) for row in held}
    return [r for r in rows if r["kind"] != "held_out" or id(r) in kept]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gate_lists", type=Path)
    parser.add_argument("--tolerance", type=float, default=RefreshConfig.tolerance)
    parser.add_argument("--seed", type=int, default=RefreshConfig.seed,
                        help="the refresh's seed (the temporal protocol's --seed), which seeds the bootstrap")
    parser.add_argument("--cap-per-user", type=int, help="keep each user's first N held-out lists only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.cap_per_user is not None and args.cap_per_user < 1:
        parser.error("--cap-per-user must be at least 1")
    rows = json.loads(args.gate_lists.read_text())
    if args.cap_per_user is not None:
        rows = capped_per_user(rows, args.cap_per_user)
    config = replace(RefreshConfig(), tolerance=args.tolerance, seed=args.seed)
    counts = {kind: sum(r["kind"] == kind for r in rows) for kind in ("held_out", "replay")}
    print(f"{args.gate_lists}: {counts['held_out']} held-out feedback lists, {counts['replay']} replay lists")
    out = {"lists": counts, "rules": {}}
    for name, rule in RULES.items():
        result = decide(rows, rule, config)
        out["rules"][name] = result
        print(f"{name:9} fold weights {result['fold_weights'][0]} / {result['fold_weights'][1]}, serving weight "
              f"{result['serving_weight']}: {result['decision']} ({result['reason']})")
        former = result["held_out_interval_rule"]
        print(f"{'':9} held-out interval rule (until stop 32): {former['decision']} ({former['reason']})")
        interval = result["replay_interval_rule"]
        print(f"{'':9} replay interval rule (until stop 34): {interval['decision']} ({interval['reason']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
