"""Every metric's facts, gathered from the modules that compute them.

`metric_info(key)` answers for any key of metrics.json: the specs declared next to
each metric's code, `fd_<extractor>` Frechet distances, and, for a key no module
declares (a plugin's), a neutral higher-is-better spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from metrics import (
    copying,
    exact,
    fd_inf,
    frechet,
    inception_score,
    kid,
    prdc,
    protection,
    quality,
    vendi,
)
from metrics.spec import MetricSpec

_SPECS = {
    s.key: s
    for s in (
        *prdc.SPECS, vendi.SPEC, *quality.SPECS, protection.SPEC, *copying.SPECS, *exact.SPECS
    )
}  # fmt: skip
# The paper's column order: diversity, quality, distances, adherence, protection.
_ORDER = [
    "recall", "vendi", "coverage", "precision", "density",
    "fid", "clip_score", "class_score", "protection_rate",
]  # fmt: skip
# Keys named after their space (`<family>` in Inception's, `<family>_<space>` in
# another's), longest family first: `fd_inf_x` is not an `fd_` key.
_FAMILIES: list[tuple[str, Callable[[str], MetricSpec]]] = [
    ("inception_score", inception_score.is_spec),
    ("copy_rate_", copying.copy_rate_spec),
    ("fd_inf", fd_inf.fd_inf_spec),
    ("kid", kid.kid_spec),
    ("fid", frechet.fd_spec),
    ("fd_", frechet.fd_spec),
]


def register_metric(spec: MetricSpec) -> None:
    """A metric of a plugin or a new module declares itself here."""
    _SPECS[spec.key] = spec


def metric_info(key: str) -> MetricSpec:
    if key in _SPECS:
        return _SPECS[key]
    for family, spec in _FAMILIES:
        if key == family or key.startswith(family.rstrip("_") + "_"):
            return spec(key)
    return MetricSpec(key, key.replace("_", " "), "value", True)


def _rank(key: str) -> tuple[int, str]:
    fid = _ORDER.index("fid")
    if key in _ORDER:
        position = _ORDER.index(key)
        # Frechet distances of other extractors sit right after FID, as in Table 1.
        return (position if position <= fid else position + 1, key)
    if key.startswith("fd_") or key.startswith("kid"):
        return (fid + 1, key)
    return (len(_ORDER) + 1, key)


def ordered(keys: Iterable[str]) -> list[str]:
    """The paper's column order; undeclared keys last, alphabetically."""
    return sorted(set(keys), key=_rank)
