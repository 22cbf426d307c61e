"""Simulated worlds with a known answer, and the calibration of the package's tests on them.

A statistical method is tested here the way a statistician would: by running it on many item sets
drawn from a world whose truth is known, and counting.

**Worlds.** Two latent factors per item, u and v (d dimensions each, i.i.d.); an encoder E that sees
both symmetrically; and two LLM conditions X = ψ(u, v) and Y = ψ(v, u) built by the *same* random
non-linear map ψ with the roles of u and v swapped. Swapping u and v maps (X, E) onto (Y, E) with
E's coordinates permuted, which mutual k-NN ignores: the two conditions have **exactly the same
alignment law**, while each item's X and Y rows are different vectors (X is mostly about u, Y about
v), so rows of one condition are not interchangeable with the other's. Variants
(:data:`WORLDS`) add what real LLM representations do: heavy-tailed latents, a strong common
direction and a decaying spectrum (anisotropy), rows that collapse towards one shared vector for a
subset of items (generations that stop early), a non-linear encoder. ``effect`` > 0 plants a real
difference (X's own noise is scaled by 1 − effect): the truth is then measured by Monte Carlo over
independent item sets.

**Methods** (:data:`METHODS`): each returns (estimate, standard error or interval, p) for the
paired difference score(X) − score(Y) against E on one item set: the per-item bootstrap with a
sign-flip test (what the package used before), a bootstrap and a delete-one jackknife that recompute
the neighbourhoods, an influence function with the displacement at the neighbourhood boundary, and
the dyadic-robust estimator of :mod:`helpers.metrics.knn_inference` (what the package uses).

**Harness** (:func:`calibrate`): type-I error at α = 0.05 in null worlds, coverage of the truth by
the 95 % interval, the standard error against the *oracle* (the standard deviation of the
difference across independent item sets), power against a planted effect beside the oracle's (a
z-test with the true standard deviation), and seconds per test. Beside it: one score's interval
(:func:`score_coverage`), the re-pairing null against chance (:func:`chance_null_error`), the cue
search's selection correction (:func:`max_test_error`) and the rephrasings' random-factor tests
(:func:`rephrasing_error`). ``benchmarks/calibration.py``
prints the table the README shows; ``tests/test_calibration.py`` asserts the bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sp

from helpers.metrics.alignment import knn_indices, overlap_from_knn, prepare_features
from helpers.metrics.knn_inference import Overlaps, inference, max_mean_null

ALPHA = 0.05
WORLDS = ("gaussian", "heavy-tailed", "anisotropic", "early-stop", "nonlinear-encoder")


@dataclass(frozen=True)
class World:
    """One simulated world: its kind, latent size ``d``, LLM width ``h`` and planted ``effect``; ``seed`` fixes its maps."""

    kind: str = "gaussian"
    effect: float = 0.0
    d: int = 12
    h: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.effect < 1:
            raise ValueError(f"effect must be in [0, 1) (the share of X's noise removed), got {self.effect}")
        if self.kind not in WORLDS:
            raise ValueError(f"unknown world {self.kind!r}; known: {', '.join(WORLDS)}")

    def _maps(self) -> dict[str, np.ndarray]:
        g = np.random.default_rng(10_000 + self.seed)
        d, h = self.d, self.h
        enc = g.standard_normal((d, 2 * d))
        return {
            "own": g.standard_normal((d, h)) / 3,
            "other": g.standard_normal((d, h)) / 3,
            "enc": enc,
            "enc2": g.standard_normal((2 * d, 2 * d)) / 2,
            "shared": g.standard_normal(h),
            "spectrum": 1.0 / np.arange(1, h + 1) ** 0.7,
        }

    def sample(self, n: int, rng: np.random.Generator, conditions: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(E, [X, Y, ...])`` for ``n`` items. With more than two conditions, the third on are
        further draws of Y's law (its map with fresh noise): the cue search's null."""
        mp = self._maps()
        draw = (lambda size: rng.standard_t(3, size)) if self.kind == "heavy-tailed" else rng.standard_normal
        u, v = draw((n, self.d)), draw((n, self.d))
        # the encoder sees u and v through the same map, side by side: swapping them permutes its coordinates
        halves = [u @ mp["enc"], v @ mp["enc"]]
        if self.kind == "nonlinear-encoder":  # the same non-linear map on each half keeps the symmetry
            halves = [np.tanh(x @ mp["enc2"]) for x in halves]
        e = np.hstack(halves)
        e = e + 0.5 * rng.standard_normal(e.shape)

        def llm(a: np.ndarray, b: np.ndarray, noise: float) -> np.ndarray:
            x = np.tanh(a @ mp["own"] + 0.6 * (b @ mp["other"])) + noise * rng.standard_normal((n, self.h))
            if self.kind == "anisotropic":
                x = x * mp["spectrum"] + 2.0 * mp["shared"]
            if self.kind == "early-stop":
                x = np.where(a[:, :1] > 0.8, 0.3 * x + 2.0 * mp["shared"], x)
            return x

        # a planted effect: X is less noisy, so its neighbourhoods follow the latents (and E) more closely
        conds = [llm(u, v, 0.4 * (1 - self.effect)), llm(v, u, 0.4)]
        conds += [llm(v, u, 0.4) for _ in range(conditions - 2)]
        return e, conds


# ----------------------------------------------------------------------------- methods


def _graphs(e: np.ndarray, xs: Sequence[np.ndarray], k: int, q: float) -> tuple[np.ndarray, list[np.ndarray]]:
    return knn_indices(prepare_features(e, q), k), [knn_indices(prepare_features(x, q), k) for x in xs]


def _dyadic(e, x, y, k, q, level, rng):
    ke, (kx, ky) = _graphs(e, (x, y), k, q)
    r = inference(Overlaps.from_knn(kx, ke) - Overlaps.from_knn(ky, ke), level)
    return r["diff"], r["ci_low"], r["ci_high"], r["p_value"], r["se"]


def _per_item(e, x, y, k, q, level, rng, n_boot=1000, n_flip=2000):
    """The per-item bootstrap interval and sign-flip p of two conditions' difference (the baselines the
    dyadic-robust tests replace): ``(difference, ci_low, ci_high, p, bootstrap standard error)``.

    Many parameters because it runs both baselines on one world's draw, each with its own resample count,
    at one k, clamp and level.
    """
    ke, (kx, ky) = _graphs(e, (x, y), k, q)
    d = overlap_from_knn(kx, ke) - overlap_from_knn(ky, ke)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    null = np.abs((rng.choice([-1.0, 1.0], (n_flip, d.size)) * d).mean(axis=1))
    p = (1 + np.sum(null >= abs(d.mean()) - 1e-12)) / (1 + n_flip)
    return d.mean(), lo, hi, p, means.std(ddof=1)


def _normal(diff: float, se: float, level: float):
    z = float(_sp.norm.ppf(0.5 + level / 2))
    p = float(2 * _sp.norm.sf(abs(diff) / se)) if se > 0 else 1.0
    return diff, diff - z * se, diff + z * se, p, se


def _score_diff(e, x, y, k, q, rows=None):
    if rows is not None:
        e, x, y = e[rows], x[rows], y[rows]
    ke, (kx, ky) = _graphs(e, (x, y), k, q)
    return float(overlap_from_knn(kx, ke).mean() - overlap_from_knn(ky, ke).mean())


def _recompute_bootstrap(e, x, y, k, q, level, rng, n_boot=200):
    """Items resampled with replacement and the neighbourhoods recomputed on the distinct items drawn
    (duplicates dropped, so no copy is another's nearest neighbour); the standard error is the
    resamples' standard deviation."""
    n = e.shape[0]
    reps = []
    for _ in range(n_boot):
        rows = np.sort(rng.integers(0, n, n))
        uniq = np.unique(rows)
        if uniq.size <= k + 1:
            continue
        reps.append(_score_diff(e, x, y, k, q, uniq))
    return _normal(_score_diff(e, x, y, k, q), float(np.std(reps, ddof=1)), level)


def _jackknife(e, x, y, k, q, level, rng):
    n = e.shape[0]
    full = _score_diff(e, x, y, k, q)
    loo = np.array([_score_diff(e, x, y, k, q, np.delete(np.arange(n), i)) for i in range(n)])
    se = float(np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))
    return _normal(full, se, level)


def _influence(e, x, y, k, q, level, rng):
    """First-order influence of each item with the neighbour it displaces at the boundary: adding item l
    to i's LLM neighbourhood pushes out i's k-th neighbour, which was in i's encoder neighbourhood with a
    probability estimated from the ranks around k."""
    n, h = e.shape[0], max(1, k // 2)
    ke = knn_indices(prepare_features(e, q), k + h)
    member_e = np.zeros((n, n), bool)
    member_e[np.arange(n)[:, None], ke[:, :k]] = True

    def psi(z):
        kz = knn_indices(prepare_features(z, q), k + h)
        m = np.zeros((n, n), bool)
        m[np.arange(n)[:, None], kz[:, :k]] = True
        beta = member_e[np.arange(n)[:, None], kz[:, k - h : k + h]].mean(axis=1)
        gamma = m[np.arange(n)[:, None], ke[:, k - h : k + h]].mean(axis=1)
        both = m & member_e
        return both.sum(1) / k + (both.sum(0) - (m * beta[:, None]).sum(0) - (member_e * gamma[:, None]).sum(0)) / k, m

    px, mx = psi(x)
    py, my = psi(y)
    p = px - py
    pair = (mx & member_e).astype(float) - (my & member_e)
    v = ((p - p.mean()) ** 2).sum() * k * k - (pair**2).sum() - (pair * pair.T).sum()
    diff = float(((mx & member_e).sum() - (my & member_e).sum()) / (n * k))
    return _normal(diff, float(np.sqrt(max(v, 0.0))) / (n * k), level)


METHODS: dict[str, tuple[str, Callable]] = {
    "dyadic": ("dyadic-robust variance, t(n−1) (the package's)", _dyadic),
    "per_item": ("per-item bootstrap + sign flip (items independent)", _per_item),
    "recompute_bootstrap": ("bootstrap, neighbourhoods recomputed", _recompute_bootstrap),
    "jackknife": ("delete-one jackknife, neighbourhoods recomputed", _jackknife),
    "influence": ("influence function with boundary displacement", _influence),
}


# ----------------------------------------------------------------------------- the harness


def oracle(world: World, n: int, k: int, q: float = 0.95, sets: int = 400, seed: int = 12345) -> tuple[float, float]:
    """(truth, sd): the mean and standard deviation of the difference over ``sets`` independent item sets."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(sets):
        e, (x, y) = world.sample(n, rng)
        diffs.append(_score_diff(e, x, y, k, q))
    return float(np.mean(diffs)), float(np.std(diffs, ddof=1))


def calibrate(
    world: World,
    n: int,
    k: int,
    methods: Sequence[str] = ("dyadic", "per_item"),
    reps: int = 200,
    q: float = 0.95,
    level: float = 0.95,
    seed: int = 0,
    truth: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """One row per method: ``reject`` (share of p < α), ``coverage`` (of the truth), ``se_ratio``
    (mean standard error / oracle sd), ``seconds`` per test, with the world, n, k, effect, truth and
    oracle sd. ``truth``: (truth, sd) from :func:`oracle` (computed when None; for a null world the
    truth is 0 by construction and only the sd is used).

    Many parameters because each is a factor of the simulation design (world, n, k, methods, replications,
    clamp, level, seed, truth) that the calibration tables vary.
    """
    truth_value, sd = truth if truth is not None else oracle(world, n, k, q)
    if world.effect == 0:
        truth_value = 0.0
    rows = []
    for name in methods:
        _, fn = METHODS[name]
        rng, mrng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        out, spent = [], 0.0
        for _ in range(reps):
            e, (x, y) = world.sample(n, rng)
            t0 = time.perf_counter()
            out.append(fn(e, x, y, k, q, level, mrng))
            spent += time.perf_counter() - t0
        res = np.array(out, dtype=np.float64)
        rows.append(
            {
                "world": world.kind,
                "n": n,
                "k": k,
                "effect": world.effect,
                "truth": truth_value,
                "oracle_sd": sd,
                "method": name,
                "reps": reps,
                "reject": float(np.mean(res[:, 3] < ALPHA)),
                "coverage": float(np.mean((res[:, 1] <= truth_value) & (truth_value <= res[:, 2]))),
                "se_ratio": float(np.mean(res[:, 4]) / sd) if sd > 0 else float("nan"),
                "oracle_power": float(
                    _sp.norm.sf(_sp.norm.ppf(1 - ALPHA / 2) - abs(truth_value) / sd)
                    + _sp.norm.cdf(-_sp.norm.ppf(1 - ALPHA / 2) - abs(truth_value) / sd)
                )
                if sd > 0
                else float("nan"),
                "seconds": spent / reps,
            }
        )
    return pd.DataFrame(rows)


def max_test_error(
    world: World,
    n: int,
    k: int,
    candidates: int = 11,
    reps: int = 200,
    q: float = 0.95,
    seed: int = 0,
    n_draws: int = 4000,
) -> dict[str, float]:
    """Family-wise error of picking the best of ``candidates`` null conditions against a baseline of the
    same law: the selection-corrected max test of :mod:`helpers.metrics.knn_inference` and the sign-flip max
    over per-item differences (the method it replaces)."""
    rng, mrng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    dyadic, flips = 0, 0
    for _ in range(reps):
        e, conds = world.sample(n, rng, conditions=candidates + 2)
        ke, graphs = _graphs(e, conds[1:], k, q)  # conds[1:]: a baseline and ``candidates`` of its law
        ov = [Overlaps.from_knn(g, ke) for g in graphs]
        contrasts = [c - ov[0] for c in ov[1:]]
        dyadic += max_mean_null(contrasts, n_draws=n_draws, seed=int(mrng.integers(1 << 30)))[2] < ALPHA
        d = np.stack([c.per_item for c in contrasts], axis=1)
        signs = mrng.choice([-1.0, 1.0], (n_draws, n))
        null = (signs @ d / n).max(axis=1)
        flips += (1 + np.sum(null >= d.mean(axis=0).max() - 1e-12)) / (1 + n_draws) < ALPHA
    return {
        "world": world.kind,
        "n": n,
        "k": k,
        "candidates": candidates,
        "reps": reps,
        "dyadic": dyadic / reps,
        "per_item_sign_flip": flips / reps,
    }


def score_coverage(
    world: World, n: int, k: int, reps: int = 200, q: float = 0.95, seed: int = 0, truth_sets: int = 400
) -> dict[str, float]:
    """Coverage of one score's 95 % interval (:func:`helpers.metrics.stats.score_ci`) and of the per-item bootstrap
    interval, against the score's mean over ``truth_sets`` independent item sets."""
    rng = np.random.default_rng(seed + 99)
    truth = []
    for _ in range(truth_sets):
        e, (x, _) = world.sample(n, rng)
        ke, (kx,) = _graphs(e, (x,), k, q)
        truth.append(float(overlap_from_knn(kx, ke).mean()))
    score = float(np.mean(truth))
    rng, mrng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    dyadic = boot = 0
    ratio = []
    for _ in range(reps):
        e, (x, _) = world.sample(n, rng)
        ke, (kx,) = _graphs(e, (x,), k, q)
        ov = Overlaps.from_knn(kx, ke)
        r = inference(ov)
        dyadic += r["ci_low"] <= score <= r["ci_high"]
        ratio.append(r["se"])
        per = ov.per_item
        means = per[mrng.integers(0, n, (1000, n))].mean(axis=1)
        lo, hi = np.quantile(means, [0.025, 0.975])
        boot += lo <= score <= hi
    return {
        "world": world.kind,
        "n": n,
        "k": k,
        "reps": reps,
        "score": score,
        "dyadic": dyadic / reps,
        "per_item_bootstrap": boot / reps,
        "se_ratio": float(np.mean(ratio) / np.std(truth, ddof=1)),
    }


def chance_null_error(
    world: World, n: int, k: int, reps: int = 200, n_perm: int = 200, q: float = 0.95, seed: int = 0
) -> float:
    """Type-I error of the re-pairing permutation null (:func:`helpers.metrics.stats.null_overlaps`) when the LLM
    space is independent of the encoder (an LLM condition drawn from another item set)."""
    from helpers.metrics.stats import null_overlaps, null_summary

    rng = np.random.default_rng(seed)
    rejected = 0
    for r in range(reps):
        e, _ = world.sample(n, rng)
        _, (x, _) = world.sample(n, rng)  # other items: no relation to e's rows
        ke, (kx,) = _graphs(e, (x,), k, q)
        null = null_overlaps(kx, ke, n_perm=n_perm, seed=seed + r)
        rejected += null_summary(float(overlap_from_knn(kx, ke).mean()), null)["p_value"] < ALPHA
    return rejected / reps


def rephrasing_error(
    world: World, n: int, k: int, variants: int = 4, reps: int = 100, q: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Type-I errors of :func:`helpers.analyses.rephrasing.random_factor`'s two tests when every variant's cue and
    NONE conditions share one law: the mean effect over the variants, and the cue × variant interaction."""
    from helpers.analyses.rephrasing import PAPER, key, random_factor
    from helpers.core.settings import AlignmentSettings

    rng = np.random.default_rng(seed)
    ids = [f"i{j}" for j in range(n)]
    names = [PAPER] + [f"v{j}" for j in range(variants - 1)]
    mean_rej = inter_rej = 0
    for _ in range(reps):
        e, conds = world.sample(n, rng, conditions=2 * variants + 1)
        reps_ = {}
        for j, v in enumerate(names):
            reps_[key(v, "SEE")] = (ids, conds[1 + 2 * j])
            reps_[key(v, "NONE")] = (ids, conds[2 + 2 * j])
        row = random_factor(reps_, {"enc": ("vision", ids, e)}, AlignmentSettings(k=k, quantile=q)).iloc[0]
        mean_rej += row["p_value"] < ALPHA
        inter_rej += row["interaction_p"] < ALPHA
    return {
        "world": world.kind,
        "n": n,
        "k": k,
        "variants": variants,
        "reps": reps,
        "mean_effect": mean_rej / reps,
        "interaction": inter_rej / reps,
    }


def monte_carlo_error(rate: float, reps: int) -> float:
    """Binomial standard error of a rate estimated from ``reps`` independent worlds."""
    return float(np.sqrt(rate * (1 - rate) / reps))


__all__ = [
    "ALPHA",
    "METHODS",
    "WORLDS",
    "World",
    "calibrate",
    "chance_null_error",
    "max_test_error",
    "monte_carlo_error",
    "oracle",
    "rephrasing_error",
    "score_coverage",
]
