"""The paper's claims, one function each, decided from the seed statistics.

Each claim compares the method under test (`[experiment] method`, default SPELL) with
the baseline (`none`) or with every other method; the thresholds and the metric keys
each claim reads come from `[claims]` (defaults: the digits experiment's). A claim
function returns None when the experiment has nothing to say on it.

Without `[claims] significance` a verdict compares the seed means (and per-seed
statistics' means with their thresholds). With it, every comparison is the paired test
of `[claims] test` over the seeds (stats.py): a comparison holds when the seeds lean the
right way and p < significance. Comparisons with a threshold pair each seed's value with
the threshold: "a relative drop of at most c" tests b against (1 - c) a seed by seed (a
non-inferiority test), "within a few %" tests the time ratio against both 1 + tol and
1 - tol, and the sparsity statistics are tested against their thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metrics.catalog import metric_info

from .aggregate import Aggregate, sweep_param
from .fronts import FrontCheck
from .protection import ProtectionRow, protected_items, split_name
from .sparsity import SparsityStats
from .stats import TEST_NAMES, Paired, TestResult, against, fmt, pct, stat
from .timing import mean_times, median_time_ratio, time_ratio

SYMBOLS = {"radius": "r"}  # how the texts write a swept parameter
WORDS = {"vendi": "Vendi score"}  # metric names as running text writes them


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


def word(key: str) -> str:
    """A metric's name in running text: "recall", "Vendi score", "exact precision"."""
    name = WORDS.get(key) or metric_info(key).name
    return name if key in WORDS else name[:1].lower() + name[1:]


def words(keys: list[str]) -> str:
    names = [word(k) for k in keys]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def paired_test(agg: Aggregate, pair: Paired) -> TestResult | None:
    """The paired test of [claims] over the seeds; None without `significance`."""
    c = agg.exp.spec.claims
    return None if c.significance is None else pair.test(c.test)


def decide(agg: Aggregate, pair: Paired, higher: bool, means_say: bool) -> tuple[bool, str]:
    """Whether b beats a (`higher`: b above a): the seed means' answer `means_say`, or,
    with `significance`, the paired test's; and the test's text ("" without it)."""
    result = paired_test(agg, pair)
    if result is None:
        return means_say, ""
    return result.supports(higher, agg.exp.spec.claims.significance), f"; {result.text()}"


def better(higher: bool, a: float, b: float) -> bool:
    return b > a if higher else b < a


def compare(agg: Aggregate, key: str, base: str, tested: str) -> tuple[str, float | None, bool]:
    """The text of one metric's change from base to tested, its relative change, and
    whether tested is better on it (seed means; with `significance`, the paired test)."""
    info = metric_info(key)
    a, b = agg.metric(base, key), agg.metric(tested, key)
    if a.mean is None or b.mean is None:
        return f"{info.name}: n/a", None, False
    rel = (b.mean - a.mean) / abs(a.mean) if a.mean else None
    pair = agg.paired(base, tested, key)
    wins, total = pair.wins(info.higher_is_better)
    up, tested_text = decide(
        agg, pair, info.higher_is_better, better(info.higher_is_better, a.mean, b.mean)
    )
    text = (
        f"{info.name} {fmt(a.mean)} → {fmt(b.mean)} ({pct(rel, signed=True)}; paired difference "
        f"{pair.differences().text()}; {agg.exp.label} better in {wins}/{total} seeds"
        f"{tested_text})"
    )
    return text, rel, up


def within_cost(
    agg: Aggregate, key: str, base: str, tested: str, rel: float | None
) -> tuple[bool, str]:
    """A relative loss on `key` of at most [claims] precision_cost: the seed means'
    relative change, or the paired test of tested against (1 - cost) x base per seed."""
    cost, higher = agg.exp.spec.claims.precision_cost, metric_info(key).higher_is_better
    drop = None if rel is None else (-rel if higher else rel)
    pair = agg.paired(base, tested, key)
    sign = -1 if higher else 1
    margin = Paired(tuple(x + sign * cost * abs(x) for x in pair.a), pair.b)
    ok, text = decide(agg, margin, higher, drop is not None and drop <= cost)
    if text:
        scaled = f"(1 {'-' if higher else '+'} {pct(cost)}) × {agg.exp.baseline}"
        text = f" ({agg.exp.label} against {scaled} per seed{text})"
    return ok, text


def diversity_claim(ev: Evidence) -> Claim:
    """Table 1: diversity up on every diversity metric, the quality metric down by little."""
    agg, c = ev.agg, ev.agg.exp.spec.claims
    base, tested, label = agg.base, agg.tested, agg.exp.label
    if not (base and tested):
        return Claim("table1", f"{label} raises diversity (Table 1)", None, f"no {label} run.")
    parts, raised = [], []
    for key in c.diversity:
        text, _, up = compare(agg, key, base, tested)
        verb = "raised" if metric_info(key).higher_is_better else "lowered"
        parts.append(f"{text}: {verb if up else 'not ' + verb}")
        raised.append(up)
    qtext, qrel, _ = compare(agg, c.quality, base, tested)
    cost_ok, test_text = within_cost(agg, c.quality, base, tested, qrel)
    parts.append(
        f"{qtext}: {'within' if cost_ok else 'beyond'} the {pct(c.precision_cost)} "
        f"allowed for a 'small' {word(c.quality)} cost{test_text}"
    )
    parts += [
        f"{compare(agg, key, base, tested)[0]}: reported, not decided on" for key in c.context
    ]
    title = f"{label} raises {words(c.diversity)} at a small {word(c.quality)} cost (Table 1)"
    return Claim("table1", title, all(raised) and cost_ok, "; ".join(parts) + ".")


def _numeric_sweep(agg: Aggregate, param: str) -> list[tuple[float, str]]:
    return sorted(
        (float(cfg.params[param]), cfg.id)
        for cfg in agg.of_method(agg.exp.method)
        if isinstance(cfg.params.get(param), int | float)
    )


def sweep_claim(ev: Evidence) -> Claim | None:
    """Figure 3: a larger value of the swept parameter trades quality for diversity: the
    diversity metric better and the quality metric not better (with `significance`:
    both significantly, diversity up and quality down) at the largest value than at the
    smallest."""
    agg, c = ev.agg, ev.agg.exp.spec.claims
    param = sweep_param(agg)
    points = _numeric_sweep(agg, param) if param else []
    if len(points) < 2:
        return None
    (lo_value, lo), (hi_value, hi) = points[0], points[-1]
    div, qual = c.sweep_diversity, c.quality
    v_lo, v_hi = agg.metric(lo, div).mean, agg.metric(hi, div).mean
    p_lo, p_hi = agg.metric(lo, qual).mean, agg.metric(hi, qual).mean
    ok = None not in (v_lo, v_hi, p_lo, p_hi)
    holds, tests = None, ""
    if ok:
        up = metric_info(div).higher_is_better
        q_up = metric_info(qual).higher_is_better
        more, t_div = decide(agg, agg.paired(lo, hi, div), up, better(up, v_lo, v_hi))
        less, t_q = decide(agg, agg.paired(lo, hi, qual), not q_up, not better(q_up, p_lo, p_hi))
        holds = more and less
        if t_div:
            tests = (
                f" (paired over seeds, {word(div)} {'up' if up else 'down'}: {t_div[2:]}; "
                f"{word(qual)} {'down' if q_up else 'up'}: {t_q[2:]})"
            )
    symbol = SYMBOLS.get(param, param)
    return Claim(
        "figure3",
        f"A larger {param} trades precision for diversity (Figure 3)",
        holds,
        f"from {symbol} = {lo_value:g} to {symbol} = {hi_value:g}, {_the(div)} goes "
        f"{fmt(v_lo)} → {fmt(v_hi)} and {_the(qual)} {fmt(p_lo)} → "
        f"{fmt(p_hi)}{tests}.",
    )


def _the(key: str) -> str:
    """'precision' and 'the Vendi score' (the digits page's words), 'the <name>'."""
    return word(key) if key == "precision" else f"the {word(key)}"


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
    c = ev.agg.exp.spec.claims
    rule = (
        ""
        if c.significance is None
        else f" A point dominates another when it does in the seed means and is better on "
        f"both axes by the paired test over seeds ({TEST_NAMES[c.test]}, p < {c.significance:g})."
    )
    return Claim(
        "figure4",
        f"{label} is on or beyond the Pareto front of the baselines (Figure 4)",
        all(f.holds for f in ev.fronts),
        "; ".join(parts) + "." + rule,
    )


def _sides(pair: Paired, limit: str, text: str) -> str:
    """'; above 50.0% in 11/20 seeds, below in 9 (exact sign test p = 0.263)'."""
    above, below, _ = pair.signs()
    return f"; above {limit} in {above}/{pair.n} seeds, below in {below}: {text[2:]}"


def _below(agg: Aggregate, limit: float, values: list[float], higher: bool = False):
    """Per-seed values below `limit` (`higher`: above it): the mean's answer, or the
    paired test's against the limit; and the test's text."""
    mean = stat(values).mean
    means_say = mean is not None and (mean > limit if higher else mean <= limit)
    pair = against(limit, values)
    holds, text = decide(agg, pair, higher, means_say)
    return holds, _sides(pair, pct(limit), text) if text else ""


def sparsity_claim(ev: Evidence) -> Claim:
    """Figure 5: few (trajectory, step) pairs corrected, weakly, and mostly early."""
    agg, c = ev.agg, ev.agg.exp.spec.claims
    if not ev.sparsity:
        return Claim("figure5", "Sparsity (Figure 5)", None, f"no {agg.exp.label} traces.")
    shares = [s.corrected_share for s in ev.sparsity]
    ratios = [s.median_ratio for s in ev.sparsity]
    earlies = [s.early_share for s in ev.sparsity]
    share, ratio, early = stat(shares).mean, stat(ratios).mean, stat(earlies).mean
    few, t_share = _below(agg, c.sparse_share, shares)
    weak, t_ratio = _below(agg, c.sparse_ratio, ratios)
    is_early, t_early = _below(agg, 0.5, earlies, higher=True)
    sparse = few and weak
    return Claim(
        "figure5",
        "Repellency is sparse and concentrated early in t (Figure 5)",
        sparse and is_early,
        f"{pct(share)} of (trajectory, step) pairs are corrected "
        f"({'≤' if share <= c.sparse_share else '>'} {pct(c.sparse_share)}{t_share}) and the "
        f"median correction is {pct(ratio)} of the score "
        f"({'≤' if ratio <= c.sparse_ratio else '>'} {pct(c.sparse_ratio)}{t_ratio}): "
        f"{'sparse' if sparse else 'not sparse'}; {pct(early)} of the corrections "
        f"happen at t ≥ {c.early_t:g} ({'more' if early > 0.5 else 'not more'} than "
        f"half{t_early}): {'early' if is_early else 'not concentrated early'} "
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
        lambda s: s.protection_value(base.method_id),
        lambda s: s.protection_value(protected.method_id),
    )
    down, seeds = pair.wins(higher_is_better=False)
    holds, tested = decide(agg, pair, False, a is not None and b is not None and b < a)
    split, item = split_name(agg), protected_items(agg)[0]
    return Claim(
        "table2",
        f"The protection rate drops with {label} (Table 2)",
        holds,
        f"share within r = {agg.exp.spec.protection.radius:g} of a {split} {item}: "
        f"{pct(a)} without {label}, {pct(b)} with {label} "
        f"repelling from the {split} split (lower in {down}/{seeds} seeds{tested}).",
    )


def _within_tolerance(agg: Aggregate, ratio, tested: str, base: str) -> tuple[bool | None, str]:
    """|ratio - 1| <= tol: the mean ratio's answer, or the paired test of the per-seed
    ratios against both 1 + tol and 1 - tol."""
    tol = agg.exp.spec.claims.time_tolerance
    change = None if ratio.mean is None else ratio.mean - 1
    if change is None:
        return None, ""
    ratios = list(mean_times(agg.seeds, tested, base).ratios().values)
    high, low = against(1 + tol, ratios), against(1 - tol, ratios)
    under, t_under = decide(agg, high, False, abs(change) <= tol)
    over, t_over = decide(agg, low, True, abs(change) <= tol)
    if not t_under:
        return abs(change) <= tol, ""
    return under and over, (
        f"; paired over seeds, the per-seed ratio must be below {1 + tol:g} and above "
        f"{1 - tol:g}: it is{_sides(high, f'{1 + tol:g}', t_under)[1:]}; and"
        f"{_sides(low, f'{1 - tol:g}', t_over)[1:]}"
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
    holds, tests = _within_tolerance(agg, ratio, tested, base)
    text = (
        f"{label} / {agg.exp.baseline} time per image = {ratio.text()} (mean ± std over seeds "
        f"of the ratio of mean times), i.e. {pct(change, True)}"
        f"; 'a few %' is taken as ±{pct(c.time_tolerance)}{tests}. The ratio of median "
        f"times, less sensitive to load spikes, is {median.text()}"
    )
    if c.significance is None and ratio.std is not None and ratio.std > c.time_tolerance:
        text += (
            f"; the seed-to-seed spread of the ratio (± {fmt(ratio.std)}) is larger than "
            "the tolerance, so on this machine the timing cannot resolve a difference of "
            "a few %"
        )
    return Claim(
        "table5",
        f"{label}'s time per image is within a few % of {agg.exp.baseline} (Table 5)",
        holds,
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
