"""Constraint precision of the chat engine on natural-language requests (issue 4, item 6).

Protocol: every request of bench/requests/constraint_requests.jsonl (written by hand, each with a
genre, an era AND a negation constraint, and the constraints a person means by it) goes through
`Assistant.reply` on ML-1M, k=10, in a fresh session of a NEW user (no history, no profile), on a
private copy of the Chroma directory. Reported:

- parse accuracy: the parsed constraints equal the expected ones exactly (genres_all, genres_any,
  genres_none, year_min, year_max, years_none), both for `RequestParser.parse` alone and for the effective
  request of the turn (`reply.request.constraints`, after the dialogue layer);
- constraint precision: the share of returned items that satisfy the EXPECTED constraints
  (micro, over all returned items; macro, the mean over requests), target >= 0.95;
- under-filled replies (fewer than k items) and every failure, printed.

    .venv/bin/python bench/constraint_precision.py [--json bench/results/constraint_precision.json]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import json
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from _assistant_bench import machine, open_bench_assistant, write_result  # noqa: E402
from retrieval.filters import Constraints, satisfies  # noqa: E402

HERE = Path(__file__).resolve().parent
KEYS = ("genres_all", "genres_any", "genres_none", "year_min", "year_max", "years_none")


def as_dict(c: Constraints) -> dict:
    return {"genres_all": sorted(c.genres_all), "genres_any": sorted(c.genres_any),
            "genres_none": sorted(c.genres_none), "year_min": c.year_min, "year_max": c.year_max,
            "years_none": sorted([a, b] for a, b in c.years_none)}


def from_dict(d: dict) -> Constraints:
    return Constraints(frozenset(d.get("genres_all", ())), frozenset(d.get("genres_any", ())),
                       frozenset(d.get("genres_none", ())), d.get("year_min"), d.get("year_max"),
                       frozenset(tuple(r) for r in d.get("years_none", ())))


def why_not(item, c: Constraints) -> str:
    own = set(item.genre_slugs)
    reasons = []
    if not c.genres_all <= own:
        reasons.append("lacks " + ",".join(sorted(c.genres_all - own)))
    if c.genres_any and not c.genres_any & own:
        reasons.append("none of " + ",".join(sorted(c.genres_any)))
    if c.genres_none & own:
        reasons.append("has excluded " + ",".join(sorted(c.genres_none & own)))
    if c.year_min is not None and (item.year is None or item.year < c.year_min):
        reasons.append(f"year {item.year} < {c.year_min}")
    if c.year_max is not None and (item.year is None or item.year > c.year_max):
        reasons.append(f"year {item.year} > {c.year_max}")
    for lo, hi in sorted(c.years_none):
        if item.year is not None and lo <= item.year <= hi:
            reasons.append(f"year {item.year} in excluded {lo}-{hi}")
    return "; ".join(reasons)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=Path, default=HERE / "requests" / "constraint_requests.jsonl")
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "constraint_precision.json")
    args = ap.parse_args()

    rows = [json.loads(line) for line in args.requests.read_text().splitlines() if line.strip()]
    for row in rows:
        e = row["expected"]
        if not ((e["genres_all"] or e["genres_any"]) and e["genres_none"]
                and (e["year_min"] is not None or e["year_max"] is not None)):
            print(f"request {row['id']} lacks a genre, negation or era constraint: {row['text']!r}", file=sys.stderr)
            return 2
    runtime = open_bench_assistant(args.dataset)
    assistant = runtime.assistant
    parser = assistant.recommender.parser
    started = time.perf_counter()
    parse_ok = turn_ok = 0
    returned = satisfied = 0
    macro: list[float] = []
    parse_failures, item_failures, underfilled, per_request = [], [], [], []
    try:
        for row in rows:
            expected = from_dict(row["expected"])
            parsed = as_dict(parser.parse(row["text"]).constraints)
            session = assistant.new_session(None)
            reply = assistant.reply(session, row["text"], k=args.k)
            effective = as_dict(reply.request.constraints) if reply.request is not None else None
            wanted = as_dict(expected)
            parse_ok += parsed == wanted
            turn_ok += effective == wanted
            if parsed != wanted or effective != wanted:
                parse_failures.append({"id": row["id"], "text": row["text"], "expected": row["expected"],
                                       "parsed": parsed, "effective": effective, "kind": reply.kind})
            good = [satisfies(r.item, expected) for r in reply.items]
            returned += len(good)
            satisfied += sum(good)
            if good:
                macro.append(sum(good) / len(good))
            if len(reply.items) < args.k:
                matching = sum(satisfies(item, expected) for item in assistant.recommender.items.values())
                underfilled.append({"id": row["id"], "text": row["text"], "returned": len(reply.items),
                                    "matching_in_catalogue": matching, "kind": reply.kind})
            for r, ok in zip(reply.items, good):
                if not ok:
                    item_failures.append({"id": row["id"], "text": row["text"], "item": r.item.label,
                                          "genres": list(r.item.genres), "why": why_not(r.item, expected)})
            per_request.append({"id": row["id"], "returned": len(good), "satisfied": int(sum(good)),
                                "parsed_ok": parsed == row["expected"], "turn_ok": effective == row["expected"]})
    finally:
        runtime.cleanup()
    n = len(rows)
    result = {
        "protocol": {"dataset": args.dataset, "requests": n, "file": str(args.requests.relative_to(HERE.parent)),
                     "k": args.k, "path": "Assistant.reply, fresh session, new user (no history/profile), "
                                          "template explanations, private Chroma copy",
                     "diversity": assistant.diversity, "sequential_retriever": runtime.sequential,
                     "each_request": "genre + era + negation constraint, expected constraints written by hand",
                     "precision": "share of returned items satisfying the EXPECTED constraints"},
        "parse_accuracy": {"parser": round(parse_ok / n, 4), "turn_effective": round(turn_ok / n, 4),
                           "parser_correct": parse_ok, "turn_correct": turn_ok},
        "constraint_precision": {"micro": round(satisfied / returned, 4) if returned else None,
                                 "macro": round(sum(macro) / len(macro), 4) if macro else None,
                                 "returned_items": returned, "satisfying_items": satisfied,
                                 "target": 0.95},
        "underfilled": underfilled,
        "parse_failures": parse_failures,
        "item_failures": item_failures,
        "per_request": per_request,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    p = result["protocol"]
    print(f"constraint precision: {p['dataset']}, {n} hand-written requests (genre+era+negation each), k={p['k']}, "
          f"{p['path']}, MMR diversity {p['diversity']}, sequential retriever: {p['sequential_retriever']}")
    print(f"parse accuracy: parser {parse_ok}/{n} = {parse_ok / n:.3f}; effective turn {turn_ok}/{n} = {turn_ok / n:.3f}")
    cp = result["constraint_precision"]
    print(f"constraint precision (expected constraints): micro {cp['micro']} ({satisfied}/{returned} items), "
          f"macro {cp['macro']} over {len(macro)} non-empty replies; target >= 0.95")
    print(f"under-filled replies (< {args.k} items): {len(underfilled)}")
    for u in underfilled:
        print(f"  #{u['id']} {u['text']!r}: {u['returned']} items, {u['matching_in_catalogue']} in the whole "
              f"catalogue match the expected constraints ({u['kind']})")
    print(f"parse failures: {len(parse_failures)}")
    for f in parse_failures:
        print(f"  #{f['id']} {f['text']!r}\n    expected  {f['expected']}\n    parsed    {f['parsed']}\n"
              f"    effective {f['effective']}")
    print(f"items violating the expected constraints: {len(item_failures)}")
    for f in item_failures:
        print(f"  #{f['id']} {f['text']!r}: {f['item']} {f['genres']} -> {f['why']}")
    print(f"machine: {result['machine']}; {result['seconds']} s")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
