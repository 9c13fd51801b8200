import json
import struct

from tests.vllm_check.conftest import requires_vllm
from vllm_check.s3_streamer import check, llama_tensor_shapes, weight_gets, write_tiny_llama


def read_header(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), len(raw) - 8 - length


def test_the_tiny_llama_is_complete_well_formed_safetensors(tmp_path):
    shards = write_tiny_llama(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    expected = llama_tensor_shapes(config)
    assert set(index["weight_map"]) == set(expected) and set(index["weight_map"].values()) == set(shards)
    total = 0
    for shard in shards:
        header, data_bytes = read_header(tmp_path / shard)
        header.pop("__metadata__")
        end = 0
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            assert info["dtype"] == "BF16" and info["shape"] == expected[name]
            start, stop = info["data_offsets"]
            count = 1
            for dim in info["shape"]:
                count *= dim
            assert start == end and stop - start == 2 * count
            end = stop
        assert end == data_bytes
        total += data_bytes
    assert index["metadata"]["total_size"] == total


@requires_vllm[0]
@requires_vllm[1]
def test_the_real_server_streams_the_model_from_a_local_s3_with_pod_identity_credentials():
    assert check() == []


def test_the_access_log_reader_finds_the_streamers_range_reads_and_nothing_else():
    # Lines as moto's server logged them in a real run (the C++ SDK's absolute URIs, werkzeug's colours).
    log = [
        '127.0.0.1 - - [02/Dec/2026 13:12:46] "PUT /gpu-inference-models/tiny/llama-s3/model-00001-of-00002.safetensors'
        ' HTTP/1.1" 200 -',
        '127.0.0.1 - - [02/Dec/2026 13:12:55] "GET /gpu-inference-models/tiny/llama-s3/model.safetensors.index.json'
        ' HTTP/1.1" 200 -',
        '127.0.0.1 - - [02/Dec/2026 13:13:13] "\x1b[35m\x1b[1mGET http://127.0.0.1:46395/gpu-inference-models/tiny/'
        'llama-s3/model-00002-of-00002.safetensors HTTP/1.1\x1b[0m" 206 -',
        '127.0.0.1 - - [02/Dec/2026 13:13:13] "GET /gpu-inference-models/tiny/other/model-00001-of-00002.safetensors'
        ' HTTP/1.1" 206 -',
        '127.0.0.1 - - [02/Dec/2026 13:13:13] "GET /gpu-inference-models/tiny/llama-s3/model-00001-of-00002.safetensors'
        ' HTTP/1.1" 403 -',
    ]
    assert weight_gets(log, "tiny/llama-s3") == {"model-00002-of-00002.safetensors"}
