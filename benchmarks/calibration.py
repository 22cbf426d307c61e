"""The calibration table of the README's statistics section: every method tried for the paired cue test,
on simulated worlds with a known answer (helpers.analyses.calibration), with its type-I error, coverage, standard
error against the oracle, power against a planted effect beside the oracle's, and seconds per test.

    .venv/bin/python benchmarks/calibration.py [--reps 100] [--methods dyadic per_item ...] [--sizes 60:5 240:10 1000:20]

The methods that recompute neighbourhoods (``recompute_bootstrap``: 200 resamples per test; ``jackknife``: n per test)
cost seconds per test at n = 240 and are left out unless named with ``--methods``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from helpers.analyses.calibration import METHODS, WORLDS, World, calibrate, oracle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--methods", nargs="+", default=["dyadic", "per_item", "influence"], choices=list(METHODS))
    ap.add_argument("--sizes", nargs="+", default=["60:5", "240:10"])
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS))
    ap.add_argument("--effect", type=float, default=0.5)
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        n, k = map(int, size.split(":"))
        for kind in args.worlds:
            truth = oracle(World(kind), n, k, sets=200)
            rows.append(calibrate(World(kind), n, k, methods=args.methods, reps=args.reps, truth=truth))
        planted = World("gaussian", effect=args.effect)
        rows.append(
            calibrate(planted, n, k, methods=args.methods, reps=args.reps, truth=oracle(planted, n, k, sets=200))
        )
        table = pd.concat(rows, ignore_index=True)
        print(table[table["n"] == n].round(3).to_string(index=False), flush=True)
    table = pd.concat(rows, ignore_index=True)
    null = (
        table[table["effect"] == 0].groupby(["n", "k", "method"])[["reject", "coverage", "se_ratio", "seconds"]].mean()
    )
    power = table[table["effect"] > 0].set_index(["n", "k", "method"])[["reject", "oracle_power"]]
    print("\nPooled over the null worlds, and power at the planted effect:")
    print(null.join(power.rename(columns={"reject": "power"})).round(3).to_string())


if __name__ == "__main__":
    main()
