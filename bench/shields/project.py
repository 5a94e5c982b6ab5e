"""The nearest point outside a union of shields and inside a box (SPELL's `project`).

SPELL's summed correction can leave a sample inside a shield when shields overlap
(the paper, after its Eq. 5), and a pixel model whose scheduler clips x0 to [-b, b]
can pull a corrected sample back inside one when its output is clamped. Here

    min ||p - y||  subject to  ||p - z_k|| >= r for every shield z_k,  |p_i| <= b,

a nonconvex problem, is solved over the few shields it meets, one move at a time. A
move leaves the deepest shield p is still in (the caller's search finds them again
after every move) for the best of a few candidates: points on the spheres of a working
set of shields (the nearest point to y on an intersection of spheres has a closed form,
a lower-dimensional sphere around their circumcentre; like an active-set method, the
set drops members whose Lagrange multiplier turns negative or that keep the spheres
from meeting), on pairs of the spheres seen so far, and SPELL's own step. The best
is the nearest to y outside every shield seen so far. Coordinates a move pushes out of
the box are fixed on its face; the spheres are then cut to the free coordinates. The
answer is feasible when the search finds no shield around it; it is a local optimum,
not a certified global one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.shields.repel import row_norms

# Moves per target: each leaves one shield; a cluster of overlapping shields takes a
# handful, so the cap is only reached by moves that cycle.
PROJECT_ITERS = 100
# Points are placed at r (1 + 2 MARGIN) and count as outside from r (1 + MARGIN):
# float32 rounding of x0' and of the scheduler's last step stays well inside that.
MARGIN = 1e-6
MULTIPLIER_TOL = 1e-9
# Pairs of spheres tried as candidates: those of the seen shields nearest the target.
PAIR_LIMIT = 16


@dataclass(frozen=True)
class Hits:
    """Shields within the radius of some query points: `point` indexes the queries,
    `key` identifies the shield (unique over all sources), `centre` is its vector."""

    point: torch.Tensor  # (P,) int64
    key: torch.Tensor  # (P,) int64
    centre: torch.Tensor  # (P, D) float64

    @classmethod
    def concat(cls, parts: list[Hits], dim: int, device) -> Hits:
        if not parts:
            rows = torch.empty(0, dtype=torch.long, device=device)
            return cls(rows, rows.clone(), torch.empty(0, dim, dtype=torch.float64, device=device))
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in ("point", "key", "centre")))


# find(points (n, D) float64, which (n,) rows of the targets, radius) -> Hits
Finder = Callable[[torch.Tensor, torch.Tensor, float], Hits]


@dataclass(frozen=True)
class Projection:
    points: torch.Tensor  # (n, D) float64
    feasible: torch.Tensor  # (n,) bool: no shield within r (1 + MARGIN), inside the box


def project_out(
    targets: torch.Tensor,
    find: Finder,
    radius: float,
    box: float | None = None,
    iters: int = PROJECT_ITERS,
) -> Projection:
    """For each target y (rows of `targets`), a point near y outside every shield that
    `find` reports and inside [-box, box]^D; a target already there is kept as is."""
    targets = targets.double()
    hit, on = radius * (1 + MARGIN), radius * (1 + 2 * MARGIN)
    rows = [_Row(y, box, hit, on) for y in targets]
    feasible = torch.zeros(len(rows), dtype=torch.bool)
    todo = list(range(len(rows)))
    for it in range(iters + 1):
        if not todo:
            break
        points = torch.stack([rows[i].p for i in todo])
        hits = find(points, torch.tensor(todo), hit)
        depth = row_norms(points[hits.point] - hits.centre)
        still = []
        for j, i in enumerate(todo):
            mine = torch.nonzero(hits.point == j).flatten()
            if mine.numel() == 0:
                feasible[i] = True
            else:
                still.append(i)
                if it < iters:
                    near = {int(hits.key[m]): hits.centre[m] for m in mine}
                    rows[i].step(int(hits.key[mine[depth[mine].argmin()]]), near)
        todo = still
    return Projection(torch.stack([r.p for r in rows]), feasible)


class _Row:
    """One target y and its point p: the working set (shield keys, oldest first), every
    shield seen around p so far and the coordinates fixed on the box's faces."""

    def __init__(self, y: torch.Tensor, box: float | None, hit: float, on: float) -> None:
        self.y, self.box, self.hit, self.on = y, box, hit, on
        self.p = y if box is None else y.clamp(-box, box)
        self.fixed = self.p != y
        self.work: list[int] = []
        self.seen: dict[int, torch.Tensor] = {}

    def step(self, key: int, near: dict[int, torch.Tensor]) -> None:
        """Moves p out of `key`, the deepest of the shields `near` it. Candidates: the
        nearest and antipodal points to y on the spheres of the working set plus `key`,
        or of that set less one older member (the active-set moves); on every pair of
        the seen spheres nearest y (two circles in the plane meet twice: the far point
        may be the one outside a third); and SPELL's own step from p. The move goes to
        the candidate nearest to y outside every shield seen so far, or else to the
        least deep one."""
        self.seen.update(near)
        old = [k for k in self.work if k != key]
        options = [old + [key]] + [[k for k in old if k != j] + [key] for j in old]
        points, works = [], []
        for keys in options:
            kept, found = self._sphere_points(keys)
            points += found
            works += [kept] * len(found)
        keys = list(self.seen)
        centres, rho2 = self._cut(keys)
        nearest = (centres - self.y[~self.fixed]).norm(dim=1).argsort()[:PAIR_LIMIT]
        for i, j, point in pair_points(self.y[~self.fixed], centres[nearest], rho2[nearest]):
            points.append(point)
            works.append([keys[nearest[i]], keys[nearest[j]]])
        points.append(self._spell_step(centres))
        works.append([])
        full, fixed = self._place(torch.stack(points))
        seen = torch.stack(list(self.seen.values()))
        depth = (self.hit - _distances(full, seen)).clamp_min(0).sum(1)
        outside = depth == 0
        if outside.any():
            best = int(torch.where(outside, (full - self.y).norm(dim=1), torch.inf).argmin())
        else:
            best = int(depth.argmin())
        self.p, self.fixed, self.work = full[best], fixed[best], works[best]

    def _cut(self, keys: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The centres of `keys` in the free coordinates and their squared radii there."""
        centres = torch.stack([self.seen[k] for k in keys])
        rho2 = self.on**2 - (self.p[self.fixed] - centres[:, self.fixed]).pow(2).sum(1)
        return centres[:, ~self.fixed], rho2

    def _sphere_points(self, keys: list[int]) -> tuple[list[int], list[torch.Tensor]]:
        """The nearest and antipodal points to y (free coordinates) on the spheres of
        `keys`, after the active-set rule: members that the fixed coordinates alone keep
        out leave, the oldest leaves where the spheres do not meet, the most negative
        multiplier leaves."""
        centres, rho2 = self._cut(keys)
        keys = [k for k, r2 in zip(keys, rho2.tolist(), strict=True) if r2 > 0]
        while keys:
            centres, rho2 = self._cut(keys)
            points = sphere_points(self.y[~self.fixed], centres, rho2)
            if points is None:
                keys = keys[1:]
                continue
            if len(keys) > 1:
                mu = multipliers(points[0], self.y[~self.fixed], centres)
                if mu.min() < -MULTIPLIER_TOL:
                    worst = int(mu.argmin())
                    keys = keys[:worst] + keys[worst + 1 :]
                    continue
            return keys, list(points)
        return keys, []

    def _spell_step(self, centres: torch.Tensor) -> torch.Tensor:
        """p moved by SPELL's correction from the seen shields (free coordinates)."""
        free = self.p[~self.fixed]
        dist = _distances(self.p[None], torch.stack(list(self.seen.values())))[0]
        weight = (self.on - dist).clamp_min(0) / dist.clamp_min(1e-300)
        return free + weight @ (free - centres)

    def _place(self, free_points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p with its free coordinates set to each row, clamped into the box; the fixed
        coordinates grow by those that were out."""
        full = self.p.expand(len(free_points), -1).clone()
        full[:, ~self.fixed] = free_points
        fixed = self.fixed.expand_as(full)
        if self.box is None:
            return full, fixed
        return full.clamp(-self.box, self.box), fixed | (full.abs() > self.box)


def _distances(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(n, m) L2 distances in float64, expanded: its rounding is far below MARGIN, and
    the search rechecks the chosen point exactly."""
    sq = points.pow(2).sum(1)[:, None] + centres.pow(2).sum(1)[None] - 2 * points @ centres.T
    return sq.clamp_min(0).sqrt()


def pair_points(y: torch.Tensor, centres: torch.Tensor, rho2: torch.Tensor):
    """(i, j, point) for the nearest and the antipodal point to y on the spheres of
    every pair of centres i < j that meet (sphere_points for two spheres, batched)."""
    i, j = torch.triu_indices(len(centres), len(centres), 1)
    edge = centres[j] - centres[i]
    length = edge.norm(dim=1)
    unit = edge / length.clamp_min(1e-300)[:, None]
    along = (length**2 - rho2[j] + rho2[i]) / (2 * length.clamp_min(1e-300))
    s2 = rho2[i] - along**2
    c = centres[i] + along[:, None] * unit
    v = (y - c) - ((y - c) * unit).sum(1, keepdim=True) * unit
    vn = v.norm(dim=1)
    ok = (length > 0) & (s2 > 0) & (vn > 1e-12 * (1.0 + (y - c).norm(dim=1)))
    v = s2.clamp_min(0).sqrt()[:, None] * v / vn.clamp_min(1e-300)[:, None]
    out = []
    for k in torch.nonzero(ok).flatten().tolist():
        out += [(int(i[k]), int(j[k]), c[k] + v[k]), (int(i[k]), int(j[k]), c[k] - v[k])]
    return out


def sphere_points(y: torch.Tensor, centres: torch.Tensor, rho2: torch.Tensor):
    """The nearest and the farthest point to y on {p : ||p - z_k||^2 = rho2_k for all
    k}, or None where that set is empty (or the centres are affinely dependent).

    With u = p - z_0 and e_k = z_k - z_0: u . e_k = (|e_k|^2 - rho2_k + rho2_0) / 2,
    so u = Q a + w with E^T = Q R, R^T a = beta, w orthogonal to the e_k and
    |w|^2 = rho2_0 - |a|^2: a sphere around c = z_0 + Q a in the complement of span(E).
    """
    z0, edges = centres[0], centres[1:] - centres[0]
    if len(edges) >= len(y):
        return None
    q_basis, r_tri = torch.linalg.qr(edges.T)
    scale = edges.norm(dim=1).clamp_min(1e-300)
    if (r_tri.diagonal().abs() <= 1e-10 * scale).any():
        return None
    beta = (edges.pow(2).sum(1) - rho2[1:] + rho2[0]) / 2
    a = torch.linalg.solve_triangular(r_tri.T, beta[:, None], upper=False)[:, 0]
    s2 = rho2[0] - a.dot(a)
    if not s2 > 0:
        return None
    c = z0 + q_basis @ a
    v = _orthogonal(y - c, q_basis)
    if v.norm() <= 1e-12 * (1.0 + (y - c).norm()):
        # y on the spheres' axis: every direction is as near, pick a fixed one
        gen = torch.Generator().manual_seed(0)
        v = _orthogonal(torch.randn(len(y), generator=gen, dtype=y.dtype).to(y.device), q_basis)
    v = s2.sqrt() * v / v.norm()
    return c + v, c - v


def _orthogonal(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    return v - basis @ (basis.T @ v)


def multipliers(q: torch.Tensor, y: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """mu with q - y = sum_k mu_k (q - z_k): the KKT multipliers of ||p - z_k|| >= rho_k
    at q (least squares; negative: p gets closer to y by leaving sphere k)."""
    normals = (q - centres).T
    return torch.linalg.lstsq(normals, (q - y)[:, None]).solution[:, 0]
