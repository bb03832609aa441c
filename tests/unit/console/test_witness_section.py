"""The overview's witness section for a node whose log has a witness policy."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from service.console import charts
from service.console.web import _query_string, _when
from service.witness.store import LogState, Peer, StoredCheckpoint

NOW = 1_795_000_000.0


def render(witness: dict[str, object]) -> str:
    env = Environment(
        loader=PackageLoader("service.console", "templates"),
        autoescape=select_autoescape(("html",)),
    )
    env.filters["when"] = _when
    env.filters["qs"] = _query_string
    empty = charts.horizontal([])
    return env.get_template("overview.html").render(
        _=lambda s: s,
        lang="en",
        languages=("en",),
        who=None,
        csrf="",
        path="/console/overview",
        here="/console/overview",
        days=14,
        per_day=charts.stacked_columns([], [], {}),
        by_type=empty,
        refusals=empty,
        latency=empty,
        head=type("Head", (), {"size": 10})(),
        checkpoint=None,
        total_messages=0,
        witness=witness,
        now=NOW,
    )


def test_each_witness_of_the_log_is_listed_with_its_failures() -> None:
    html = render(
        {
            "policy": True,
            "met": StoredCheckpoint(1, 8, NOW - 60, "note"),
            "waiting_since": NOW - 7200,
            "peers": [
                ("uz", Peer("p1", 8, 1, 0, NOW, NOW - 60, None, None)),
                ("kg", Peer("p2", 3, None, 4, NOW, None, NOW - 5, "timeout")),
            ],
            "logs": [LogState("migex/UZ:MIA", 5, NOW, 1)],
        }
    )
    assert '<tr><th scope="row">uz</th><td>8</td>' in html
    assert '<tr class="warn"><th scope="row">kg</th><td>3</td>' in html
    assert "(timeout)</td><td>4</td>" in html
    assert '<dd class="warn">' in html  # waiting for witnesses for two hours
    assert '<tr class="warn"><th scope="row">migex/UZ:MIA</th>' in html
