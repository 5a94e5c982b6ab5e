"""`bench score`: every method of a run against the reference set, per prompt and overall.

Writes RUN/metrics.json and RUN/metrics.csv (atomically) and returns the dict:
{"partial": bool, "prompts": [ids scored], ("missing": {method_id: [ids]},) "protocol":
{...}, "results": [{"method_id", "method", "params", "metrics", "ci", "per_prompt",
"counts", "cost", "notes"}]}. An unfinished generation is scored only with `partial`.
A metric without a meaningful value is null, and `notes[scope][metric]` says why
(scope = "all" or a prompt id).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.data.references import ReferenceProvider
from bench.errors import BenchError
from bench.models.registry import ground_truth
from bench.run_dir import RunDir
from metrics.catalog import metric_info
from metrics.completeness import scoring_scope
from metrics.frechet import fd_key
from metrics.method_scores import PER_PROMPT, GroundTruthScoring, ScoreSettings, score_method
from metrics.outputs import format_table, write_outputs
from metrics.prdc import PRDC_KEYS
from metrics.protected_set import ProtectedSet
from metrics.references import get_reference
from metrics.run_protection import add_protection, protected_set
from metrics.run_reader import MethodDir, method_dirs
from metrics.spaces import FeatureSpaces
from metrics.subset_metrics import RowFiles

COPY_EXTRACTOR = "sscd"  # Somepalli et al. 2023's copy detector

__all__ = ["PER_PROMPT", "ScoreSettings", "format_table", "score_run"]


def score_run(
    run_dir: Path,
    extractors: list[str] | None = None,
    weights_dir: Path | None = None,
    device: str = "cpu",
    settings: ScoreSettings | None = None,
    partial: bool = False,
) -> dict:
    """Score every method dir under RUN/samples. The first extractor serves the per-prompt
    metrics (prdc, Vendi); every extractor gets a marginal Frechet distance. An unfinished
    generation is refused; `partial` scores the prompts every method has finished."""
    settings = settings or ScoreSettings()
    run = RunDir(run_dir)
    scope = scoring_scope(run, partial)
    model = run.model()
    reference = get_reference(model, run.path)  # an unknown model says so first
    methods = method_dirs(run, scope.prompt_ids)
    plan = plan_spaces(run, methods, extractors, reference)
    reference, names = plan.reference, plan.names
    spaces = FeatureSpaces(run.path, plan.needed, reference, weights_dir, device)
    exact = _ground_truth_scoring(run, model)
    with RowFiles(run.features) as spaces.row_files:
        results = [score_method(m, spaces, names, settings, exact) for m in methods]
    protocol = _protocol(model, reference, names, spaces, settings)
    if exact is not None:
        protocol["exact"] = _exact_protocol(exact)
    out = {**scope.record(), "protocol": protocol, "results": results}
    protection_spaces = list(dict.fromkeys([names[0], *plan.copy_spaces, *names]))
    protection = add_protection(
        results, methods, spaces, protection_spaces, settings, plan.protected
    )
    if protection is not None:
        out["protocol"]["protection"] = protection
    else:
        run.write_neighbours({})
    write_outputs(run, out)
    return out


@dataclass(frozen=True)
class SpacesPlan:
    """What a scoring pass extracts: the marginal spaces (`names`, the first per prompt),
    the copy-detection spaces, and the quality extractor."""

    reference: ReferenceProvider
    names: list[str]
    copy_spaces: list[str]
    protected: ProtectedSet | None

    @property
    def needed(self) -> list[str]:
        quality = self.reference.quality_extractor
        return list(dict.fromkeys([*self.names, quality, *self.copy_spaces]))


def plan_spaces(
    run: RunDir,
    methods: list[MethodDir],
    extractors: list[str] | None,
    reference: ReferenceProvider | None = None,
) -> SpacesPlan:
    reference = reference or get_reference(run.model(), run.path)
    names = list(dict.fromkeys(extractors or reference.extractors))
    if not names:
        raise BenchError("no feature extractor to score with")
    protected = protected_set(methods)
    return SpacesPlan(reference, names, _copy_spaces(reference, protected, extractors), protected)


def _copy_spaces(
    reference: ReferenceProvider, protected: object, extractors: list[str] | None
) -> list[str]:
    """SSCD joins the default image spaces when there is a protected set to copy from."""
    if protected is None or extractors or reference.reference_free:
        return []
    return [COPY_EXTRACTOR] if "dinov2" in reference.extractors else []


def _ground_truth_scoring(run: RunDir, model: str) -> GroundTruthScoring | None:
    """Exact metrics for a model that declares its true distribution."""
    truth = ground_truth(model)
    if truth is None:
        return None
    settings = run.run_settings()
    return GroundTruthScoring(
        truth, int(settings.get("batch_size", 1)), int(settings.get("seed", 0))
    )


def _exact_protocol(exact: GroundTruthScoring) -> dict:
    from metrics import exact as exact_metrics

    return {
        "truth": exact.truth.name,
        "points": "each sample's final latents, flattened",
        "hit": "most responsible component, inside its 99% ellipse (else an outlier)",
        "batch_size": exact.batch_size,
        "reference": f"{exact_metrics.REFERENCE_FACTOR} x the generated count of exact "
        "samples per prompt, seeded from (run seed, class), the points as features",
        "definitions": {spec.key: spec.definition for spec in exact_metrics.SPECS},
    }


def _protocol(
    model: str,
    reference: ReferenceProvider,
    names: list[str],
    spaces: FeatureSpaces,
    settings: ScoreSettings,
) -> dict:
    primary, k = names[0], settings.k
    return {
        "model": model,
        "reference": {
            "per_prompt": reference.name,
            "marginal": "union of the per-prompt reference sets of the scored prompts",
        },
        "references": "none" if reference.reference_free else "images",
        "extractors": {n: e.settings() for n, e in spaces.extractors.items()},
        "feature_dims": {n: spaces.feature_dim(n) for n in spaces.extractors},
        "per_prompt_extractor": primary,
        "marginal_extractors": names,
        "prdc": {
            "k": k,
            "distance": "euclidean",
            "comparison": "strict <",
            "convention": "prdc package (clovaai) 0.2",
            "min_images": k + 1,
        },
        "vendi": {"kernel": "linear on L2-normalised features", "order": 1},
        "frechet": {
            "statistics": "float64 mean and covariance (ddof=1)",
            "sqrt": "trace via eigenvalues of S1 S2",
            "requires": "more samples than feature dimensions",
        },
        "quality": {
            "metric": reference.quality,
            "extractor": reference.quality_extractor,
            "definition": metric_info(reference.quality).definition,
            "aggregate": "mean over all (image, prompt) pairs",
        },
        "aggregate": "mean over the prompts where a metric is defined",
        "bootstrap": {
            "over": "prompts",
            "resamples": settings.bootstrap_resamples,
            "level": settings.bootstrap_level,
            "seed": settings.bootstrap_seed,
            "method": "percentile",
        },
        "metric_names": {
            **{m: f"{m}_k{k}_{primary}" for m in PRDC_KEYS},
            "vendi": f"vendi_linear_{primary}",
            **{fd_key(n): f"fd_{n}" if n != "inception" else "fid_inception" for n in names},
        },
    }
