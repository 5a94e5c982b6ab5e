"""Memorisation metrics in any feature space: copy similarity, AuthPct and the CT test.

Each is split for streaming: a part fitted once from the training (protected) set, a
per-batch part returning small per-sample statistics, and a score from the
concatenated statistics. AuthPct (Alaa et al. 2022) and CT (Meehan et al. 2020)
follow dgm-eval (layer6ai-labs/dgm-eval, commit 74c79f7); copy similarity follows
Somepalli et al. 2023. Nearest neighbours are exact float64 Euclidean, chunked.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from bench.errors import BenchError
from metrics.protection import float64_rows, nearest
from metrics.spec import MetricSpec
from metrics.values import Undefined

# dgm-eval's tau = 20 / m: a cell enters CT when it holds more than 20 generated samples.
CT_MIN_GENERATED = 20

AUTH_PCT_SPEC = MetricSpec(
    "auth_pct",
    "AuthPct",
    "% authentic",
    True,
    "share of generated features farther from their nearest training feature than that "
    "feature is from its own nearest other training feature (100 = no copying)",
)
CT_SPEC = MetricSpec(
    "ct_score",
    "CT (data-copying)",
    "Z score",
    True,
    "test-weighted mean over k-means cells of the Z-scored Mann-Whitney U of generated vs "
    "held-out distances to the nearest training feature; << 0 data-copying, >> 0 underfitting",
)
SPECS = (AUTH_PCT_SPEC, CT_SPEC)


def copy_rate_key(extractor: str) -> str:
    return f"copy_rate_{extractor}"


def copy_rate_spec(key: str) -> MetricSpec:
    """The spec of a `copy_rate_<extractor>` key."""
    extractor = key.removeprefix("copy_rate_")
    return MetricSpec(
        key,
        f"Copy rate ({extractor})",
        "share of generated",
        False,
        "share of generated features whose best cosine similarity to a protected feature "
        "is above the feature space's copy threshold",
    )


def _unit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows scaled to unit norm (zero rows stay zero) and which rows were zero."""
    norm = x.norm(dim=1, keepdim=True)
    zero = norm[:, 0] == 0
    return x / torch.where(norm == 0, 1.0, norm), zero


def best_cosine(
    gen: np.ndarray, protected: np.ndarray, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Each generated row's highest cosine similarity to a protected row, and that row's index.

    A zero-norm row has cosine 0 with every row (torch's cosine_similarity convention);
    a zero-norm generated row gets similarity 0 and index -1.
    """
    g, p = float64_rows(gen), float64_rows(protected)
    if g.shape[1] != p.shape[1]:
        raise BenchError(f"generated items have {g.shape[1]} values, protected {p.shape[1]}")
    if len(p) == 0:
        raise BenchError("the protected set is empty")
    g, g_zero = _unit(g)
    p, _ = _unit(p)
    best = torch.full((len(g),), -float("inf"), dtype=torch.float64)
    arg = torch.full((len(g),), -1, dtype=torch.int64)
    for start in range(0, len(p), chunk):
        m, a = (g @ p[start : start + chunk].T).max(dim=1)
        better = m > best
        best, arg = torch.where(better, m, best), torch.where(better, a + start, arg)
    best[g_zero], arg[g_zero] = 0.0, -1
    return best.numpy(), arg.numpy()


def copy_rate(similarity: np.ndarray, threshold: float) -> float | Undefined:
    """Share of generated samples whose best cosine similarity is strictly above `threshold`."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if len(similarity) == 0:
        return Undefined("no generated samples")
    if not -1.0 <= threshold <= 1.0:
        return Undefined(f"copy threshold {threshold} is outside [-1, 1]")
    return float((similarity > threshold).mean())


class Authenticity:
    """AuthPct against a training set: fit once, then flag generated batches.

    A generated sample is authentic when its nearest training point j is closer to
    j's own nearest other training point than to the sample (dgm-eval's strict `<`).
    So a tie is not authentic, nor is an exact copy; a training point with a
    duplicate has nearest-other distance 0, and every sample landing nearest to it
    is authentic unless it copies it exactly.
    """

    def __init__(self, train: np.ndarray, chunk: int = 4096) -> None:
        self._train = float64_rows(train)
        self.chunk = chunk
        n = len(self._train)
        self.undefined = (
            Undefined(f"AuthPct needs at least 2 training samples, got {n}") if n < 2 else None
        )
        self._nearest_other = np.empty(0)
        if self.undefined is None:
            self._nearest_other = nearest(self._train, self._train, chunk, skip_self=True)[0]

    def authentic(self, gen: np.ndarray) -> np.ndarray:
        """One flag per generated sample (all False when AuthPct is undefined)."""
        g = float64_rows(gen)
        if self.undefined is not None:
            return np.zeros(len(g), dtype=bool)
        d, j = nearest(g, self._train, self.chunk)
        return self._nearest_other[j] < d

    def auth_pct(self, flags: np.ndarray) -> float | Undefined:
        """100 x the share of authentic samples among the concatenated flags."""
        if self.undefined is not None:
            return self.undefined
        flags = np.asarray(flags, dtype=bool)
        if len(flags) == 0:
            return Undefined("no generated samples")
        return 100.0 * float(flags.mean())


def _z_u(gen_d: np.ndarray, test_d: np.ndarray) -> float:
    """Mann-Whitney U of generated vs test distances, Z-scored under H0 as dgm-eval does."""
    m, n = len(gen_d), len(test_d)
    # scipy's U is the first sample's (the generated); alternative only changes the p-value.
    u = mannwhitneyu(gen_d, test_d, alternative="less", method="asymptotic").statistic
    mean = n * m / 2 - 0.5  # dgm-eval's continuity correction
    std = np.sqrt(n * m * (n + m + 1) / 12)
    return float((u - mean) / std)


class DataCopyingTest:
    """CT, the data-copying test (Meehan et al. 2020), as dgm-eval's compute_CTscore.

    PCA to `max_dims` components (fitted on train) when the dimension is larger,
    k-means cells fitted on train, per cell a Z-scored Mann-Whitney U of generated
    against test distances to the nearest training point of the cell, and the cells
    holding more than 20 generated samples averaged by their share of test samples.
    """

    def __init__(
        self,
        train: np.ndarray,
        test: np.ndarray,
        cells: int = 3,
        max_dims: int = 64,
        seed: int = 0,
        chunk: int = 4096,
    ) -> None:
        train_x, test_x = float64_rows(train).numpy(), float64_rows(test).numpy()
        self.cells, self.chunk = cells, chunk
        self._mean = self._components = None
        self.undefined = self._size_problem(len(train_x), train_x.shape[1], max_dims)
        if self.undefined is not None:
            return
        if train_x.shape[1] > max_dims:
            pca = PCA(n_components=max_dims, random_state=seed).fit(train_x)
            self._mean, self._components = pca.mean_, pca.components_
        self._fit_cells(self._project(train_x), seed)
        if self.undefined is None:
            self._test = self._cell_distances(self._project(test_x))
            self.undefined = self._empty_cell(self._test[:, 0], "test")

    def _size_problem(self, n: int, dim: int, max_dims: int) -> Undefined | None:
        if n < self.cells:
            return Undefined(f"CT needs at least {self.cells} training samples, got {n}")
        if dim > max_dims and n < max_dims:
            return Undefined(
                f"CT's PCA to {max_dims} dims needs {max_dims} training samples, got {n}"
            )
        return None

    def _project(self, x: np.ndarray) -> np.ndarray:
        """PCA projection, one row at a time so a row's value never depends on its batch."""
        if self._components is None:
            return x
        return ((x - self._mean)[:, None, :] @ self._components.T)[:, 0]

    def _fit_cells(self, train: np.ndarray, seed: int) -> None:
        with warnings.catch_warnings():  # duplicates: fewer distinct points than cells
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=self.cells, n_init=10, random_state=seed).fit(train)
        self._centres = km.cluster_centers_
        # Cells by exact nearest centre (sklearn's predict, but batch-independent).
        labels = nearest(train, self._centres, self.chunk)[1]
        self._train = [train[labels == c] for c in range(self.cells)]
        self.undefined = self._empty_cell(labels, "training")

    def _empty_cell(self, labels: np.ndarray, name: str) -> Undefined | None:
        counts = np.bincount(labels.astype(np.int64), minlength=self.cells)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            return Undefined(f"k-means cell {empty[0]} of {self.cells} holds no {name} samples")
        return None

    def _cell_distances(self, x: np.ndarray) -> np.ndarray:
        """(n, 2): each row's cell and its distance to the nearest training point there."""
        out = np.empty((len(x), 2))
        out[:, 0] = nearest(x, self._centres, self.chunk)[1]
        for c in range(self.cells):
            rows = out[:, 0] == c
            if rows.any():
                out[rows, 1] = nearest(x[rows], self._train[c], self.chunk)[0]
        return out

    def statistics(self, gen: np.ndarray) -> np.ndarray:
        """(n, 2) float64 per generated sample: its cell and its in-cell training distance.

        Rows are (-1, nan) when CT is undefined for this training/test set.
        """
        g = float64_rows(gen).numpy()
        if self.undefined is not None:
            return np.tile([-1.0, np.nan], (len(g), 1))
        return self._cell_distances(self._project(g))

    def score(self, stats: np.ndarray) -> float | Undefined:
        """CT from the concatenated statistics of all generated samples."""
        if self.undefined is not None:
            return self.undefined
        stats = np.asarray(stats, dtype=np.float64).reshape(-1, 2)
        if len(stats) == 0:
            return Undefined("no generated samples")
        gen_cells = stats[:, 0].astype(np.int64)
        counts = np.bincount(gen_cells, minlength=self.cells)
        kept = np.flatnonzero(counts > CT_MIN_GENERATED)
        if len(kept) == 0:
            return Undefined(
                f"no k-means cell holds more than {CT_MIN_GENERATED} generated samples "
                f"(most: {counts.max()})"
            )
        test_cells = self._test[:, 0]
        z = [_z_u(stats[gen_cells == c, 1], self._test[test_cells == c, 1]) for c in kept]
        weights = np.array([(test_cells == c).mean() for c in kept])
        return float(weights @ np.array(z) / weights.sum())
