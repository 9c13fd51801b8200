"""A node group's disk must hold the weights its nodes' pods download."""

from __future__ import annotations

from stack.node_disk import SYSTEM_AND_IMAGES_GIB, largest_node_download_gib
from tests.harness import model_plans, run_bad_config, run_config, stack_config


def test_the_worst_node_is_the_heaviest_set_of_pods_that_fits_its_gpus() -> None:
    pods = [(4, 131.0), (1, 15.0), (1, 15.0), (2, 60.0)]
    assert largest_node_download_gib(pods, 8) == 131.0 + 60.0 + 15.0 + 15.0
    assert largest_node_download_gib([(8, 700.0), (1, 15.0)], 8) == 700.0
    assert largest_node_download_gib([(4, 10.0), (4, 20.0), (4, 30.0)], 8) == 50.0


def test_a_disk_smaller_than_the_weights_is_refused_with_the_size_that_works() -> None:
    config = stack_config("dev")
    config["gpu-inference:nodeGroups"][0]["diskSizeGib"] = 100
    run = run_bad_config(config, preview=True)
    message = str(run.error)
    assert "nodeGroups[0].diskSizeGib: 100 GiB is too small" in message
    assert "llama-3-1-70b" in message and "Give at least" in message
    assert run.registrations == []
    plans = model_plans(run_config(stack_config("dev"), preview=True))
    weights = sum(p["plan"]["weights_gib_total"] for p in plans.values())
    needed = int(message.split("Give at least ")[1].split(",")[0])
    assert needed >= weights + SYSTEM_AND_IMAGES_GIB


def test_the_size_it_names_is_accepted() -> None:
    config = stack_config("dev")
    config["gpu-inference:nodeGroups"][0]["diskSizeGib"] = 100
    needed = int(str(run_bad_config(config, preview=True).error).split("Give at least ")[1].split(",")[0])
    config["gpu-inference:nodeGroups"][0]["diskSizeGib"] = needed
    assert run_config(config, preview=True).error is None


def test_weights_served_from_a_volume_need_no_disk() -> None:
    config = stack_config("dev")
    config["gpu-inference:nodeGroups"][0]["diskSizeGib"] = 50
    for model in config["gpu-inference:models"]:
        model["source"] = {"type": "volume", "claimName": "weights", "path": model["name"]}
    assert run_config(config, preview=True).error is None
