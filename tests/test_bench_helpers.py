"""The benchmark's pure helpers: summaries, targets, tables, profiles and load figures.

No timing is asserted here; the benchmarks themselves run with `make bench`.
"""

import pytest

from bench._load import Load
from bench._profile import summarise
from bench._stats import Summary, Target, markdown_table, ratios, spread
from bench.paced import percentile


def test_a_summary_is_min_median_max() -> None:
    s = Summary.of([3.0, 1.0, 2.0, 10.0])
    assert (s.n, s.min, s.median, s.max) == (4, 1.0, 2.5, 10.0)
    with pytest.raises(ValueError, match="no values"):
        Summary.of([])


def test_ratios_pair_each_round_with_its_own_baseline() -> None:
    assert ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    with pytest.raises(ValueError, match="one baseline per round"):
        ratios([1.0], [1.0, 2.0])


def test_a_target_says_whether_it_is_met() -> None:
    ceiling, floor = Target("<=", 1.3), Target(">=", 0.5)
    assert ceiling.met(1.3) and not ceiling.met(1.31)
    assert floor.met(0.5) and not floor.met(0.49)
    assert str(ceiling) == "≤ 1.30x"
    assert str(Target("<=", 150, "MB")) == "≤ 150 MB"


def test_a_spread_shows_the_median_then_the_range() -> None:
    assert spread(Summary.of([1.0, 2.0, 4.0]), "x") == "2.00x (1.00x to 4.00x)"
    assert spread(Summary.of([0.25]), "s") == "0.250 s"


def test_a_markdown_table_aligns_and_escapes() -> None:
    table = markdown_table(["figure", "value"], [["a|b", "1.00x"], ["c", "10.00x"]])
    assert table.splitlines() == [
        "| figure |  value |",
        "| ------ | -----: |",
        "| a\\|b   |  1.00x |",
        "| c      | 10.00x |",
    ]
    # A delimiter cell keeps a hyphen beside its colon, however narrow the column.
    assert markdown_table(["a", "n"], [["x", "5"]]).splitlines()[1] == "| --- | --: |"
    with pytest.raises(ValueError, match="one cell per header"):
        markdown_table(["a", "b"], [["only one"]])


def test_collapsed_stacks_give_own_and_total_shares() -> None:
    lines = [
        "run (uvicorn/server.py:10);handle (/work/main/api/app.py:5);dumps (orjson.py:1) 3",
        "run (uvicorn/server.py:10);handle (/work/main/api/app.py:7) 1",
        "_bootstrap (/opt/py/lib/python3.11/threading.py:9);wait (/opt/py/lib/python3.11/x.py:3) 4",
        "",
        "not a stack line",
    ]
    samples, own, total = summarise(lines)
    assert samples == 8
    assert [(h.frame, h.own) for h in own] == [
        ("wait (x.py)", 0.5),
        ("dumps (orjson.py)", 0.375),
        ("handle (api/app.py)", 0.125),
    ]
    # Every stack runs through start-up frames (threads, the server): the totals leave them out.
    assert [(h.frame, h.total) for h in total] == [
        ("handle (api/app.py)", 0.5),
        ("wait (x.py)", 0.5),
        ("dumps (orjson.py)", 0.375),
    ]


def test_wrk_figures_are_read_from_its_json_line() -> None:
    out = (
        'Running 3s test\nWRKJSON {"requests":300,"duration_us":3000000,"bytes":1,'
        '"connect":0,"read":0,"write":0,"status":2,"timeout":1,"p50_us":1500,'
        '"p90_us":4000,"p99_us":9000,"max_us":12000,"mean_us":2000.0}\n'
    )
    load = Load.parse(out)
    assert (load.requests, load.rps, load.p99_ms, load.errors) == (300, 100.0, 9.0, 3)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0
