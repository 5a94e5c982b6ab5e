"""Exact metrics for ground-truth models (toy2d, digits-gmm): reference/metrics.md,
"Exact metrics on ground-truth models".

Every function takes the generated points of one prompt (the final latents, (N, ...),
flattened to (N, D)), the model's true distribution (a `GroundTruth` and a class
label, or a single `Mixture` with label None) and returns a float, or `Undefined`
where the metric has no value (no samples, non-finite samples, no full batch, ...).

A sample hits component k when k has the largest responsibility for it and the sample
lies inside k's 99% ellipse; a sample outside that ellipse is an outlier and hits
nothing (`Mixture.assign`), so coverage cannot be bought with low-quality samples.

Mode entropy: the entropy (nats) of the normalised hit histogram of the samples,
outliers excluded. It is reported beside the entropy of the true weights pi
(`true_mode_entropy`; their difference says how far a method is from the true mode
proportions) and beside `mode_kl`, KL(hit histogram || pi), which is 0 exactly when
the samples hit the components in the true proportions. All expectations under i.i.d.
sampling use hit probabilities q_k: by default pi_k times the ellipse mass, overlap
ignored (metrics.md); `hit_probs` passes better ones (`Mixture.hit_probabilities(n_mc)`).
"""

from __future__ import annotations

import numpy as np

from bench.models.ground_truth import GroundTruth, Mixture
from bench.seeding import derive_seed
from metrics.prdc import DEFAULT_K, compute_prdc
from metrics.prdc import SPECS as PRDC_SPECS
from metrics.spec import MetricSpec
from metrics.values import Undefined
from metrics.vendi import SPEC as VENDI_SPEC
from metrics.vendi import vendi_from_kernel, vendi_score

REFERENCE_FACTOR = 10

SPECS = (
    MetricSpec(
        "exact_log_density",
        "Exact log-density",
        "nats",
        True,
        "mean log p(x | class) of the samples under the true class mixture",
    ),
    MetricSpec(
        "mode_coverage",
        "Mode coverage",
        "share of components",
        True,
        "share of the class's mixture components hit by at least one sample (99% ellipse)",
    ),
    MetricSpec(
        "mode_coverage_weighted",
        "Weighted mode coverage",
        "share of mass",
        True,
        "total true mass of the components hit by at least one sample",
    ),
    MetricSpec(
        "mode_entropy",
        "Mode entropy",
        "nats",
        True,
        "entropy of the samples' component histogram (outliers excluded), beside that of pi",
    ),
    MetricSpec(
        "mode_kl",
        "Mode KL",
        "nats",
        False,
        "KL(component histogram of the samples || true component weights)",
    ),
    MetricSpec(
        "outlier_share",
        "Outliers",
        "share of samples",
        False,
        "share of samples outside the 99% ellipse of their most likely component",
    ),
    MetricSpec(
        "exact_vendi_rbf",
        "Vendi score (RBF)",
        "effective no. of samples",
        True,
        "exp of the entropy of the eigenvalues of K/n, K the Gaussian kernel at the"
        " median component scale of the true mixture",
    ),
    MetricSpec(
        "distinct_modes_per_batch",
        "Distinct modes per batch",
        "components",
        True,
        "mean over full batches of the number of distinct components hit",
    ),
)


def _against_exact(spec: MetricSpec) -> MetricSpec:
    return MetricSpec(
        f"exact_{spec.key}",
        f"Exact {spec.name[0].lower()}{spec.name[1:]}",
        spec.unit,
        spec.higher_is_better,
        f"{spec.definition}; the points as features, against {REFERENCE_FACTOR} x the "
        "generated count of exact samples",
    )


def _iid(spec: MetricSpec) -> MetricSpec:
    return MetricSpec(
        f"{spec.key}_iid",
        f"{spec.name} (i.i.d.)",
        spec.unit,
        spec.higher_is_better,
        f"expectation of {spec.key} for as many i.i.d. samples of the true distribution",
    )


_BY_KEY = {spec.key: spec for spec in SPECS}
SPECS = (
    *SPECS,
    *(_against_exact(spec) for spec in (*PRDC_SPECS, VENDI_SPEC)),
    *(_iid(_BY_KEY[k]) for k in ("mode_coverage", "mode_coverage_weighted")),
    _iid(_BY_KEY["distinct_modes_per_batch"]),
    MetricSpec(
        "true_mode_entropy", "True mode entropy", "nats", True,
        "entropy of the true component weights pi, what mode_entropy is read against",
    ),
)  # fmt: skip


def _mixture(truth: GroundTruth | Mixture, label: int | None) -> Mixture:
    if isinstance(truth, Mixture):
        if label is not None:
            raise ValueError("a single Mixture has no classes: pass label=None")
        return truth
    return truth.of_class(label)


def _rows(points) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    return x.reshape(len(x), -1) if len(x) else x.reshape(0, 0)


def _check(points) -> np.ndarray | Undefined:
    x = _rows(points)
    if len(x) == 0:
        return Undefined("no samples")
    if not np.isfinite(x).all():
        return Undefined(f"{int((~np.isfinite(x).all(1)).sum())} non-finite samples")
    return x


def _hits(points, truth, label) -> tuple[np.ndarray, Mixture] | Undefined:
    x = _check(points)
    if isinstance(x, Undefined):
        return x
    mix = _mixture(truth, label)
    return mix.assign(x), mix


def _histogram(hits: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(hits[hits >= 0], minlength=k).astype(np.float64)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# --- quality --------------------------------------------------------------------------


def exact_log_density(points, truth: GroundTruth | Mixture, label: int | None) -> float | Undefined:
    """Mean over the samples of log p(x | class), in nats (higher is better)."""
    x = _check(points)
    if isinstance(x, Undefined):
        return x
    return float(np.mean(_mixture(truth, label).log_prob(x)))


def outlier_share(points, truth: GroundTruth | Mixture, label: int | None) -> float | Undefined:
    """Share of samples that hit no component (outside their best component's ellipse)."""
    res = _hits(points, truth, label)
    if isinstance(res, Undefined):
        return res
    hits, _ = res
    return float(np.mean(hits < 0))


# --- diversity --------------------------------------------------------------------------


def mode_coverage(points, truth: GroundTruth | Mixture, label: int | None) -> float | Undefined:
    """Hit components / K."""
    res = _hits(points, truth, label)
    if isinstance(res, Undefined):
        return res
    hits, mix = res
    return float(np.mean(_histogram(hits, mix.num_components) > 0))


def mode_coverage_weighted(
    points, truth: GroundTruth | Mixture, label: int | None
) -> float | Undefined:
    """Sum of pi_k over the hit components."""
    res = _hits(points, truth, label)
    if isinstance(res, Undefined):
        return res
    hits, mix = res
    return float(mix.weights[_histogram(hits, mix.num_components) > 0].sum())


def _hit_shares(points, truth, label) -> tuple[np.ndarray, Mixture] | Undefined:
    """The normalised hit histogram h over the components; Undefined when nothing is hit."""
    res = _hits(points, truth, label)
    if isinstance(res, Undefined):
        return res
    hits, mix = res
    counts = _histogram(hits, mix.num_components)
    if counts.sum() == 0:
        return Undefined("every sample is an outlier")
    return counts / counts.sum(), mix


def mode_entropy(points, truth: GroundTruth | Mixture, label: int | None) -> float | Undefined:
    """Entropy (nats) of the normalised hit histogram; Undefined when nothing is hit."""
    res = _hit_shares(points, truth, label)
    return res if isinstance(res, Undefined) else _entropy(res[0])


def true_mode_entropy(truth: GroundTruth | Mixture, label: int | None) -> float:
    """Entropy (nats) of the true component weights pi, what `mode_entropy` is read against."""
    return _entropy(_mixture(truth, label).weights)


def mode_kl(points, truth: GroundTruth | Mixture, label: int | None) -> float | Undefined:
    """KL(h || pi) in nats, h the normalised hit histogram (0 at the true proportions)."""
    res = _hit_shares(points, truth, label)
    if isinstance(res, Undefined):
        return res
    h, mix = res
    nz = h > 0
    return float(np.sum(h[nz] * (np.log(h[nz]) - mix.gmm.log_weights[nz])))


def distinct_modes_per_batch(
    points, truth: GroundTruth | Mixture, label: int | None, batch_size: int
) -> float | Undefined:
    """Mean over batches of the number of distinct components hit; samples
    b*B .. b*B+B-1 form batch b. Only full batches count (a short last batch would not
    be comparable with the i.i.d. expectation at B)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    res = _hits(points, truth, label)
    if isinstance(res, Undefined):
        return res
    hits, _ = res
    full = len(hits) // batch_size
    if full == 0:
        return Undefined(f"{len(hits)} samples, no full batch of {batch_size}")
    batches = hits[: full * batch_size].reshape(full, batch_size)
    return float(np.mean([len(np.unique(b[b >= 0])) for b in batches]))


# --- i.i.d. expectations ------------------------------------------------------------------


def _q(truth, label, hit_probs) -> np.ndarray:
    if hit_probs is not None:
        return np.asarray(hit_probs, dtype=np.float64)
    return _mixture(truth, label).hit_probabilities()


def _hit_at_least_once(q: np.ndarray, n: int) -> np.ndarray:
    return -np.expm1(n * np.log1p(-np.clip(q, 0.0, 1.0)))  # 1 - (1 - q)^n, accurately


def expected_distinct_modes(
    truth: GroundTruth | Mixture, label: int | None, batch_size: int, hit_probs=None
) -> float:
    """sum_k 1 - (1 - q_k)^B: distinct components per batch of B i.i.d. samples."""
    return float(_hit_at_least_once(_q(truth, label, hit_probs), batch_size).sum())


def expected_mode_coverage(
    truth: GroundTruth | Mixture, label: int | None, n: int, hit_probs=None
) -> float:
    """(1/K) sum_k 1 - (1 - q_k)^n: `mode_coverage` of n i.i.d. samples, in expectation."""
    return float(_hit_at_least_once(_q(truth, label, hit_probs), n).mean())


def expected_mode_coverage_weighted(
    truth: GroundTruth | Mixture, label: int | None, n: int, hit_probs=None
) -> float:
    """sum_k pi_k (1 - (1 - q_k)^n): `mode_coverage_weighted` of n i.i.d. samples."""
    mix = _mixture(truth, label)
    return float(np.sum(mix.weights * _hit_at_least_once(_q(truth, label, hit_probs), n)))


def mode_coverage_std(
    truth: GroundTruth | Mixture, label: int | None, n: int, hit_probs=None
) -> float:
    """Standard deviation of `mode_coverage` of n i.i.d. samples, treating the components'
    hit events as independent (they are negatively correlated, so this is an upper bound)."""
    p = _hit_at_least_once(_q(truth, label, hit_probs), n)
    return float(np.sqrt(np.sum(p * (1.0 - p))) / len(p))


# --- reference sample, P/R/D/C and Vendi against it -----------------------------------


def exact_reference(
    truth: GroundTruth | Mixture,
    label: int | None,
    n: int,
    seed: int,
    factor: int = REFERENCE_FACTOR,
) -> np.ndarray:
    """factor * n exact i.i.d. samples of the class (n: the generated count), from a
    generator seeded from (seed, label): the same for every method of a run."""
    if n < 1 or factor < 1:
        raise ValueError(f"reference size must be positive, got n={n}, factor={factor}")
    rng = np.random.default_rng(derive_seed("exact-reference", seed, label))
    return _mixture(truth, label).sample(factor * n, rng)


def component_scale(truth: GroundTruth | Mixture, label: int | None) -> float:
    """The median over the class's components of their rms std, sqrt(mean eigenvalue):
    a fixed length scale of the true distribution (the default RBF Vendi bandwidth)."""
    mix = _mixture(truth, label)
    return float(np.median(np.sqrt(mix.gmm.eigvals.mean(axis=1))))


def vendi_rbf(points, bandwidth: float) -> float | Undefined:
    """Vendi score with the Gaussian kernel exp(-||x - y||^2 / (2 h^2)) (unit diagonal):
    the effective number of distinct samples at length scale h."""
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    x = _check(points)
    if isinstance(x, Undefined):
        return x
    sq = np.sum(x**2, axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0, None)
    return vendi_from_kernel(np.exp(-d2 / (2.0 * bandwidth**2)))


def exact_sample_metrics(
    points, reference: np.ndarray, k: int = DEFAULT_K, bandwidth: float | None = None
) -> dict:
    """`exact_precision`, `_recall`, `_density`, `_coverage` (metrics.prdc) of the points
    against an exact reference sample, and `exact_vendi` (metrics.vendi) of the points,
    all with the points themselves as features; with `bandwidth`, `exact_vendi_rbf` too.

    `exact_vendi` is the standard protocol (linear kernel on L2-normalised features); on
    2-D points it only sees directions from the origin and is at most 2, so for toy2d
    read `exact_vendi_rbf`. Values may be `Undefined`."""
    keys = ["precision", "recall", "density", "coverage", "vendi"]
    if bandwidth is not None:
        keys.append("vendi_rbf")
    x = _check(points)
    if isinstance(x, Undefined):
        return {f"exact_{key}": x for key in keys}
    prdc = compute_prdc(_rows(reference), x, k=k)
    out = {
        f"exact_{key}": (prdc if isinstance(prdc, Undefined) else prdc[key])
        for key in ("precision", "recall", "density", "coverage")
    }
    out["exact_vendi"] = vendi_score(x)
    if bandwidth is not None:
        out["exact_vendi_rbf"] = vendi_rbf(x, bandwidth)
    return out


def exact_scores(
    points,
    truth: GroundTruth | Mixture,
    label: int | None,
    batch_size: int,
    seed: int = 0,
    k: int = DEFAULT_K,
    reference_factor: int = REFERENCE_FACTOR,
    bandwidth: float | None = None,
) -> dict:
    """Every exact metric of one prompt's samples, with the i.i.d. expectations beside
    them (`*_iid`) and the true mode entropy: one dict for the scorer. The RBF Vendi
    bandwidth defaults to `component_scale` of the class."""
    n = len(_rows(points))
    h = component_scale(truth, label) if bandwidth is None else bandwidth
    out = {
        "exact_log_density": exact_log_density(points, truth, label),
        "outlier_share": outlier_share(points, truth, label),
        "mode_coverage": mode_coverage(points, truth, label),
        "mode_coverage_weighted": mode_coverage_weighted(points, truth, label),
        "mode_entropy": mode_entropy(points, truth, label),
        "mode_kl": mode_kl(points, truth, label),
        "distinct_modes_per_batch": distinct_modes_per_batch(points, truth, label, batch_size),
        "true_mode_entropy": true_mode_entropy(truth, label),
        "distinct_modes_per_batch_iid": expected_distinct_modes(truth, label, batch_size),
    }
    if n == 0:
        none = Undefined("no samples")
        out.update(mode_coverage_iid=none, mode_coverage_weighted_iid=none)
        out.update(exact_sample_metrics(points, np.zeros((0, 0)), k, h))
        return out
    out["mode_coverage_iid"] = expected_mode_coverage(truth, label, n)
    out["mode_coverage_weighted_iid"] = expected_mode_coverage_weighted(truth, label, n)
    reference = exact_reference(truth, label, n, seed, reference_factor)
    out.update(exact_sample_metrics(points, reference, k, h))
    return out
