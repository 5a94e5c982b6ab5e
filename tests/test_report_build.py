"""build_report end to end on fabricated runs: the page, its links, its contents."""

from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.errors import BenchError
from reports.build import build_report
from reports.synthetic import DEFAULT_CONFIGS, FakeConfig, make_run

CONFIGS = [*DEFAULT_CONFIGS[:3], FakeConfig("pg-s16", "pg", {"strength": 16.0}, 0.2)]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def parse(index: Path) -> Links:
    parser = Links()
    parser.feed(index.read_text())
    return parser


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    path = make_run(
        tmp_path_factory.mktemp("build") / "run",
        prompts=3,
        samples=8,
        steps=6,
        configs=CONFIGS,
        protection=True,
    )
    return build_report(path)


def test_index_is_written_in_the_run(index):
    assert index.name == "index.html" and index.parent.name == "report" and index.exists()


def test_page_lists_every_method_config(index):
    text = index.read_text()
    for config in CONFIGS:
        assert config.id in text


def test_every_link_is_relative_and_exists(index):
    page = parse(index)
    files = [link for link in page.links if not link.startswith("#")]
    assert files, "the page links no files"
    for link in files:
        assert "://" not in link and not link.startswith("/"), link
        assert (index.parent / link).exists(), link
    assert "script" not in page.tags and "link" not in page.tags


def test_page_has_all_figures_tables_and_grids(index):
    links = set(parse(index).links)
    report = index.parent
    for name in (
        "pareto-recall-vs-precision",
        "pareto-coverage-vs-density",
        "pareto-vendi-vs-class_score",
        "pareto-class_score-vs-fd_digits",
        "sweep-spell",
        "sparsity-compare",
        "sparsity-spell-r1-l1.6",
        "sparsity-pg-s16",
    ):
        assert f"figures/{name}.png" in links and f"figures/{name}.svg" in links, name
    for table in ("table1-defaults", "table2-protection", "table4-sweeps", "table5-cost"):
        for fmt in ("md", "csv", "json"):
            assert (report / "tables" / f"{table}.{fmt}").exists()
    assert "grids/compare.png" in links and "grids/prompt-0.png" in links
    assert not (report / "figures" / "sparsity-none.png").exists()  # none never corrects


def test_page_shows_the_manifest_and_config(index):
    text = index.read_text()
    for expected in ("0123456789abcdef", "0" * 40, "[method.spell]", "radius", "numpy"):
        assert expected in text, expected


def test_unscored_run_still_reports_what_it_can(tmp_path):
    path = make_run(
        tmp_path / "raw", prompts=2, samples=4, steps=4, scored=False, configs=DEFAULT_CONFIGS[:2]
    )
    text = build_report(path).read_text()
    assert "bench score" in text
    assert "figures/sparsity-spell-r1-l1.6.png" in text and "table5-cost" in text
    assert "pareto-" not in text


def test_not_a_run_directory(tmp_path):
    with pytest.raises(BenchError, match="manifest.json"):
        build_report(tmp_path)
