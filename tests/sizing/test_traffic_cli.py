"""``python -m sizing traffic``: the stack's traffic planning from the command line, as text or JSON."""

from __future__ import annotations

import json

from sizing.cli import main
from sizing.instances import INSTANCES
from sizing.models import load_model
from sizing.planner import fitting_plans
from sizing.settings import ServingSettings
from sizing.traffic import TrafficTarget, plan_for_traffic

ARGS = [
    "traffic",
    "--model", "llama-3.1-70b", "--gpu", "H100-80GB,H200-141GB", "--max-model-len", "8192",
    "--requests-per-second", "20", "--min-requests-per-second", "5", "--input-len", "1000", "--output-len", "200",
    "--p95-ttft-s", "1", "--p95-tpot-s", "0.05",
]  # fmt: skip


def test_json_is_the_traffic_plan_the_stack_would_make(capsys):
    assert main([*ARGS, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    model = load_model("llama-3.1-70b")
    plans, attempts = fitting_plans(
        model, ServingSettings(max_model_len=8192), instance_types=["p5.48xlarge", "p5e.48xlarge"]
    )
    prices = {name: INSTANCES[name].on_demand_usd_per_hour for name in ("p5.48xlarge", "p5e.48xlarge")}
    target = TrafficTarget(20.0, 1000, 200, p95_ttft_s=1.0, p95_tpot_s=0.05, min_requests_per_s=5.0)
    expected = plan_for_traffic(model, plans, target, node_usd_per_hour=prices, attempts=attempts).to_dict()
    assert data["chosen"]["layout"] == expected["chosen"]["layout"]
    assert data["replicas"] == expected["replicas"]
    assert [w["layout"] for w in data["weighed"]] == [w["layout"] for w in expected["weighed"]]
    assert {"H100-80GB", "H200-141GB"} <= {w["layout"].split()[0] for w in data["weighed"]}


def test_the_table_names_the_choice_and_every_alternative(capsys):
    assert main(ARGS) == 0
    out = capsys.readouterr().out
    assert "  chosen: " in out and "per million output tokens" in out and "  per replica: " in out
    assert out.count("  weighed ") >= 3 and "  extrapolated: " in out


def test_an_unmet_target_exits_1_naming_the_closest_layout(capsys):
    assert main([*ARGS[:-1], "0.001"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: llama-3.1-70b: no allowed layout serves 20 requests/s")
    assert "What would work: the closest layout is" in err


def test_a_bad_rate_exits_2_in_one_line(capsys):
    argv = [*ARGS]
    argv[argv.index("--requests-per-second") + 1] = "0"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--requests-per-second" in err and "give a finite number > 0" in err


def test_an_unmet_target_in_json_carries_what_would_work_as_suggestions(capsys):
    assert main([*ARGS[:-1], "0.001", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (suggestion,) = data["suggestions"]
    assert suggestion.startswith("the closest layout is ") and f"What would work: {suggestion}" in data["error"]
