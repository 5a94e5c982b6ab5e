"""The paper's claims, one function each, decided from the seed statistics.

Each claim compares the method under test (`[experiment] method`, default SPELL) with
the baseline (`none`) or with every other method; the thresholds come from `[claims]`.
A claim function returns None when the experiment has nothing to say on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metrics.catalog import metric_info

from .aggregate import Aggregate, sweep_param
from .fronts import FrontCheck
from .protection import ProtectionRow, split_name
from .sparsity import SparsityStats
from .stats import fmt, pct, stat
from .timing import median_time_ratio, time_ratio

DIVERSITY = ("recall", "vendi", "coverage")  # Table 1's diversity metrics
QUALITY = "precision"
SYMBOLS = {"radius": "r"}  # how the texts write a swept parameter


@dataclass
class Claim:
    key: str
    title: str
    holds: bool | None  # None: not measured in this experiment
    text: str


@dataclass
class Evidence:
    """What the claims are decided from."""

    agg: Aggregate
    fronts: list[FrontCheck]
    sparsity: list[SparsityStats]
    protection: list[ProtectionRow]


def verdict(holds: bool | None) -> str:
    return {True: "**Holds.**", False: "**Does not hold.**", None: "**Not measured.**"}[holds]


def compare(agg: Aggregate, key: str, base: str, tested: str) -> tuple[str, float | None, bool]:
    """The text of one metric's change from base to tested, its relative change, and
    whether the seed mean went up."""
    info = metric_info(key)
    a, b = agg.metric(base, key), agg.metric(tested, key)
    if a.mean is None or b.mean is None:
        return f"{info.name}: n/a", None, False
    rel = (b.mean - a.mean) / abs(a.mean) if a.mean else None
    pair = agg.paired(base, tested, key)
    wins, total = pair.wins(info.higher_is_better)
    text = (
        f"{info.name} {fmt(a.mean)} → {fmt(b.mean)} ({pct(rel, signed=True)}; paired difference "
        f"{pair.differences().text()}; {agg.exp.label} better in {wins}/{total} seeds)"
    )
    return text, rel, b.mean > a.mean


def diversity_claim(ev: Evidence) -> Claim:
    """Table 1: diversity up on every diversity metric, precision down by little."""
    agg, c = ev.agg, ev.agg.exp.spec.claims
    base, tested, label = agg.base, agg.tested, agg.exp.label
    if not (base and tested):
        return Claim("table1", f"{label} raises diversity (Table 1)", None, f"no {label} run.")
    parts, raised = [], []
    for key in DIVERSITY:
        text, _, up = compare(agg, key, base, tested)
        parts.append(f"{text}: {'raised' if up else 'not raised'}")
        raised.append(up)
    qtext, qrel, _ = compare(agg, QUALITY, base, tested)
    cost_ok = qrel is not None and -qrel <= c.precision_cost
    parts.append(
        f"{qtext}: {'within' if cost_ok else 'beyond'} the {pct(c.precision_cost)} "
        "allowed for a 'small' precision cost"
    )
    title = f"{label} raises recall, Vendi score and coverage at a small precision cost (Table 1)"
    return Claim("table1", title, all(raised) and cost_ok, "; ".join(parts) + ".")


def _numeric_sweep(agg: Aggregate, param: str) -> list[tuple[float, str]]:
    return sorted(
        (float(cfg.params[param]), cfg.id)
        for cfg in agg.of_method(agg.exp.method)
        if isinstance(cfg.params.get(param), int | float)
    )


def sweep_claim(ev: Evidence) -> Claim | None:
    """Figure 3: a larger value of the swept parameter trades precision for diversity."""
    agg = ev.agg
    param = sweep_param(agg)
    points = _numeric_sweep(agg, param) if param else []
    if len(points) < 2:
        return None
    (lo_value, lo), (hi_value, hi) = points[0], points[-1]
    v_lo, v_hi = agg.metric(lo, "vendi").mean, agg.metric(hi, "vendi").mean
    p_lo, p_hi = agg.metric(lo, QUALITY).mean, agg.metric(hi, QUALITY).mean
    ok = None not in (v_lo, v_hi, p_lo, p_hi)
    symbol = SYMBOLS.get(param, param)
    return Claim(
        "figure3",
        f"A larger {param} trades precision for diversity (Figure 3)",
        (v_hi > v_lo and p_hi <= p_lo) if ok else None,
        f"from {symbol} = {lo_value:g} to {symbol} = {hi_value:g}, the Vendi score goes "
        f"{fmt(v_lo)} → {fmt(v_hi)} and precision {fmt(p_lo)} → {fmt(p_hi)}.",
    )


def front_claim(ev: Evidence) -> Claim:
    """Figure 4: every sweep point of the tested method on or beyond the others' fronts."""
    label = ev.agg.exp.label
    if not any(f.points for f in ev.fronts):
        return Claim("figure4", f"{label} on the Pareto front (Figure 4)", None, "no fronts.")
    parts = [
        f"{metric_info(f.y).name} vs {metric_info(f.x).name}: {f.on_front}/{f.points} "
        f"{label} points undominated by the baselines, {f.baselines_dominated}/"
        f"{f.baseline_points} baseline points dominated by {label} "
        f"({'holds' if f.holds else 'does not hold'})"
        for f in ev.fronts
    ]
    return Claim(
        "figure4",
        f"{label} is on or beyond the Pareto front of the baselines (Figure 4)",
        all(f.holds for f in ev.fronts),
        "; ".join(parts) + ".",
    )


def sparsity_claim(ev: Evidence) -> Claim:
    """Figure 5: few (trajectory, step) pairs corrected, weakly, and mostly early."""
    c = ev.agg.exp.spec.claims
    if not ev.sparsity:
        return Claim("figure5", "Sparsity (Figure 5)", None, f"no {ev.agg.exp.label} traces.")
    share = stat(s.corrected_share for s in ev.sparsity).mean
    ratio = stat(s.median_ratio for s in ev.sparsity).mean
    early = stat(s.early_share for s in ev.sparsity).mean
    sparse = share <= c.sparse_share and ratio <= c.sparse_ratio
    is_early = early > 0.5
    return Claim(
        "figure5",
        "Repellency is sparse and concentrated early in t (Figure 5)",
        sparse and is_early,
        f"{pct(share)} of (trajectory, step) pairs are corrected "
        f"({'≤' if share <= c.sparse_share else '>'} {pct(c.sparse_share)}) and the "
        f"median correction is {pct(ratio)} of the score "
        f"({'≤' if ratio <= c.sparse_ratio else '>'} {pct(c.sparse_ratio)}): "
        f"{'sparse' if sparse else 'not sparse'}; {pct(early)} of the corrections "
        f"happen at t ≥ {c.early_t:g} ({'more' if is_early else 'not more'} than half): "
        f"{'early' if is_early else 'not concentrated early'} "
        f"(means over {len(ev.sparsity)} seeds).",
    )


def protection_claim(ev: Evidence) -> Claim:
    """Table 2: fewer samples near the protected set with the tested method repelling."""
    agg, label = ev.agg, ev.agg.exp.label
    if not ev.protection:
        return Claim("table2", "Protection (Table 2)", None, "no [protection] section.")
    base, protected = ev.protection[0], ev.protection[-1]
    a, b = base.rate.mean, protected.rate.mean
    pair = agg.protect.pair(
        lambda s: s.protection.get(base.method_id), lambda s: s.protection.get(protected.method_id)
    )
    down, seeds = pair.wins(higher_is_better=False)
    split = split_name(agg)
    return Claim(
        "table2",
        f"The protection rate drops with {label} (Table 2)",
        a is not None and b is not None and b < a,
        f"share within r = {agg.exp.spec.protection.radius:g} of a {split} image: "
        f"{pct(a)} without {label}, {pct(b)} with {label} "
        f"repelling from the {split} split (lower in {down}/{seeds} seeds).",
    )


def time_claim(ev: Evidence) -> Claim | None:
    """Table 5: the tested default's time per image within a few % of the baseline's."""
    agg, c, label = ev.agg, ev.agg.exp.spec.claims, ev.agg.exp.label
    base, tested = agg.base, agg.tested
    if not (base and tested):
        return None
    ratio = time_ratio(agg.seeds, tested, base)
    median = median_time_ratio(agg.seeds, tested, base)
    change = None if ratio.mean is None else ratio.mean - 1
    text = (
        f"{label} / {agg.exp.baseline} time per image = {ratio.text()} (mean ± std over seeds "
        f"of the ratio of mean times), i.e. {pct(change, True)}"
        f"; 'a few %' is taken as ±{pct(c.time_tolerance)}. The ratio of median times, "
        f"less sensitive to load spikes, is {median.text()}"
    )
    if ratio.std is not None and ratio.std > c.time_tolerance:
        text += (
            f"; the seed-to-seed spread of the ratio (± {fmt(ratio.std)}) is larger than "
            "the tolerance, so on this machine the timing cannot resolve a difference of "
            "a few %"
        )
    return Claim(
        "table5",
        f"{label}'s time per image is within a few % of {agg.exp.baseline} (Table 5)",
        None if change is None else abs(change) <= c.time_tolerance,
        text + ".",
    )


CLAIMS: tuple[Callable[[Evidence], Claim | None], ...] = (
    diversity_claim,
    sweep_claim,
    front_claim,
    sparsity_claim,
    protection_claim,
    time_claim,
)


def make_claims(ev: Evidence) -> list[Claim]:
    """Every claim the experiment can decide, in the paper's order."""
    return [claim for claim in (check(ev) for check in CLAIMS) if claim is not None]
