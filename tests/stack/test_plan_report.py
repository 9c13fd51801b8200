"""make synth's plan table and plan.json say why each model got its layout and what its node group leaves idle."""

from __future__ import annotations

import json

from sizing.instances import INSTANCES
from stack.plan_report import explanation_lines, idle_text, traffic_lines
from stack.synth import synth
from tests.harness import run_stack
from tests.stack.autoscaling_fixtures import placement


def test_every_model_in_the_plan_says_why() -> None:
    for stack in ("dev", "prod", "multinode"):
        for model in run_stack(stack, True).outputs["plan"]["models"]:
            plan = model["plan"]
            if "traffic" in model:  # chosen for its traffic target: the layouts weighed say why
                traffic = model["traffic"]
                layout = f"{plan['gpu']} TP={plan['tensor_parallel_size']} PP={plan['pipeline_parallel_size']}"
                assert "why" not in model and traffic["chosen"]["layout"] == layout
                assert traffic["weighed"][0]["layout"] == layout, "the chosen layout is the cheapest weighed"
                continue
            why = model["why"]
            assert why["chosen"].startswith(f"{plan['gpus']} x {plan['gpu']}")
            assert isinstance(why["passedOver"], list) and isinstance(why["cheaperIf"], list)
            if plan["gpus"] > 1:
                assert why["passedOver"], model["name"]


def test_prod_8b_says_its_min_concurrency_is_why_it_runs_on_two_gpus() -> None:
    # Without its traffic target (the memory plan alone).
    model = next(m for m in placement("prod").models if m.name == "llama-3-1-8b").to_dict()
    assert model["plan"]["tensor_parallel_size"] == 2
    tp1 = model["why"]["passedOver"][0]
    assert "TP=1" in tp1 and "minConcurrency 16 at 32k needs" in tp1
    assert any("minConcurrency" in line and "(1 GPU)" in line for line in model["why"]["cheaperIf"])
    # With it, TP=1 is set aside for the same reason, and the table says so.
    model = next(m for m in run_stack("prod", True).outputs["plan"]["models"] if m["name"] == "llama-3-1-8b")
    (tp1,) = [line for line in model["traffic"]["setAside"] if "TP=1 " in line]
    assert "fewer than min_concurrency=16" in tp1


def test_idle_gpus_are_what_the_needed_nodes_hold_beyond_the_replicas() -> None:
    plan = run_stack("dev", True).outputs["plan"]
    (group,) = plan["nodeGroups"]
    per_node = INSTANCES[group["instanceType"]].gpus_per_node
    used = sum(m["plan"]["gpus"] * m["replicas"] for m in plan["models"] if m["nodeGroup"] == group["name"])
    assert group["idleGpus"] == group["neededNodes"] * per_node - used
    assert idle_text(group, per_node) == f"; {group['idleGpus']} of {group['neededNodes'] * per_node} GPUs idle"


def test_the_table_prints_the_explanation_and_plan_json_holds_it(tmp_path, capsys) -> None:
    synth("dev", tmp_path)
    out = capsys.readouterr().out
    written = json.loads((tmp_path / "dev" / "plan.json").read_text())
    for model in written["models"]:
        for line in explanation_lines(model):
            assert line in out
    assert "GPUs idle" in out or "GPUs used" in out


def test_the_table_shows_each_traffic_targets_replica_tokens_replicas_and_dollars(tmp_path, capsys) -> None:
    synth("prod", tmp_path)
    out = capsys.readouterr().out
    written = json.loads((tmp_path / "prod" / "plan.json").read_text())
    (model,) = [m for m in written["models"] if "traffic" in m]
    traffic = model["traffic"]
    chosen = traffic["chosen"]
    row = next(line for line in out.splitlines() if line.startswith(f"  {model['name']} ") and chosen["layout"] in line)
    per = chosen["perReplica"]
    replicas = f"{traffic['replicas']['min']}-{traffic['replicas']['max']}"
    expected = [
        f"{per['requestsPerSecond']:.2f}",
        f"{per['outputTokensPerSecond']:.0f}",
        f"{per['meanInFlight']:.1f}",
        replicas,
        f"{chosen['usdPerHour']:.2f}",
        f"{chosen['usdPerMillionOutputTokens']:.3f}",
    ]
    assert row.split()[-len(expected) :] == expected
    for line in traffic_lines(written):
        assert line in out
    weighed = [o for o in traffic["weighed"] if o["layout"] != chosen["layout"]]
    assert weighed and all(f"weighed {o['layout']}:" in out for o in weighed)
    assert all(f"extrapolated: {line}" in out for line in traffic["extrapolated"])
    assert traffic_lines({"models": [m for m in written["models"] if "traffic" not in m]}) == []
