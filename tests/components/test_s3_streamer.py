import json

import pytest

from components.s3_streamer import (
    DEFAULT_MEMORY_LIMIT_BYTES,
    OBJECT_STORE_CHUNK_BYTES,
    OBJECT_STORE_DEFAULT_CONCURRENCY,
    load_args,
    model_reference,
    server_env,
    streamer_settings,
)
from sizing.instances import INSTANCES
from stack.model_source_s3 import S3Source


def pod_share(instance_name, gpus):
    """(vCPUs, memory GiB) of a pod holding ``gpus`` of the node's GPUs, 90% of its share of the node."""
    instance = INSTANCES[instance_name]
    share = gpus / instance.gpus_per_node * 0.9
    return instance.vcpus * share, instance.memory_gib * share


def settings_for(instance_name, gpus):
    vcpus, memory_gib = pod_share(instance_name, gpus)
    return streamer_settings(vcpus, memory_gib, shm_gib=gpus, workers=gpus)


@pytest.mark.parametrize("instance", sorted(INSTANCES))
@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_every_catalog_pod_gets_settings_within_the_streamers_limits_and_its_memory(instance, gpus):
    settings = settings_for(instance, gpus)
    assert settings.concurrency >= OBJECT_STORE_DEFAULT_CONCURRENCY
    assert settings.concurrency * OBJECT_STORE_CHUNK_BYTES <= settings.memory_limit_bytes <= DEFAULT_MEMORY_LIMIT_BYTES
    pod_bytes = pod_share(instance, gpus)[1] * 1024**3
    assert settings.memory_limit_bytes * gpus < pod_bytes / 2  # every worker's buffer together


def test_a_bigger_share_of_the_node_reads_with_more_threads():
    assert settings_for("p5.48xlarge", 1).concurrency >= settings_for("p4d.24xlarge", 1).concurrency
    assert streamer_settings(64, 512, 1, 1).concurrency > streamer_settings(16, 512, 1, 1).concurrency


def test_too_little_memory_is_a_clear_error():
    with pytest.raises(ValueError, match="more memory or fewer GPUs"):
        streamer_settings(pod_vcpus=64, pod_memory_gib=1.5, shm_gib=1, workers=8)


def test_the_server_is_pointed_at_the_prefix_with_the_streamer():
    source = S3Source(type="s3", uri="s3://my-models/llama/70b/")
    settings = streamer_settings(96, 1000, 8, 8)
    args = [model_reference(source), *load_args(settings)]
    assert args[:3] == ["s3://my-models/llama/70b", "--load-format", "runai_streamer"]
    extra = json.loads(args[args.index("--model-loader-extra-config") + 1])
    assert extra == {"concurrency": settings.concurrency, "memory_limit": settings.memory_limit_bytes}
    env = {e["name"]: e["value"] for e in server_env("us-east-2", "/cache/vllm-assets")}
    assert env["AWS_REGION"] == "us-east-2" and env["HF_HUB_OFFLINE"] == "1"
    assert not any(name.startswith("AWS_ACCESS_KEY") or name == "AWS_ENDPOINT_URL" for name in env)
