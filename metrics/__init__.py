"""Feature extractors and metrics: `metrics.score.score_run` scores a run directory.

extractors/      digits, pixels, inception, dinov2, clip (`get_extractor`)
prdc, vendi, frechet, quality, protection   the metrics (functions + torchmetrics classes)
score            per prompt and overall, written to RUN/metrics.{json,csv}
"""
