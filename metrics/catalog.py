"""Every metric's facts, gathered from the modules that compute them.

`metric_info(key)` answers for any key of metrics.json: the specs declared next to
each metric's code, `fd_<extractor>` Frechet distances, and, for a key no module
declares (a plugin's), a neutral higher-is-better spec.
"""

from __future__ import annotations

from collections.abc import Iterable

from metrics import exact, frechet, prdc, protection, quality, vendi
from metrics.spec import MetricSpec

_SPECS = {
    s.key: s for s in (*prdc.SPECS, vendi.SPEC, *quality.SPECS, protection.SPEC, *exact.SPECS)
}
# The paper's column order: diversity, quality, distances, adherence, protection.
_ORDER = [
    "recall", "vendi", "coverage", "precision", "density",
    "fid", "clip_score", "class_score", "protection_rate",
]  # fmt: skip


def register_metric(spec: MetricSpec) -> None:
    """A metric of a plugin or a new module declares itself here."""
    _SPECS[spec.key] = spec


def metric_info(key: str) -> MetricSpec:
    if key in _SPECS:
        return _SPECS[key]
    if key == "fid" or key.startswith("fd_"):
        return frechet.fd_spec(key)
    return MetricSpec(key, key.replace("_", " "), "value", True)


def _rank(key: str) -> tuple[int, str]:
    fid = _ORDER.index("fid")
    if key in _ORDER:
        position = _ORDER.index(key)
        # Frechet distances of other extractors sit right after FID, as in Table 1.
        return (position if position <= fid else position + 1, key)
    if key.startswith("fd_"):
        return (fid + 1, key)
    return (len(_ORDER) + 1, key)


def ordered(keys: Iterable[str]) -> list[str]:
    """The paper's column order; undeclared keys last, alphabetically."""
    return sorted(set(keys), key=_rank)
