import json
import os

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tools.hf_to_s3 import main, s3_etag

BUCKET = "model-bucket"
URI = f"s3://{BUCKET}/llama/tiny"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def repo(tmp_path):
    """A local stand-in for a downloaded snapshot: configs, a tokenizer, two weight shards (one multipart)."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (snapshot / "tokenizer.json").write_text("{}")
    (snapshot / "model-00001-of-00002.safetensors").write_bytes(os.urandom(12 * MIB))
    (snapshot / "model-00002-of-00002.safetensors").write_bytes(os.urandom(1 * MIB))
    (snapshot / ".cache").mkdir()
    (snapshot / ".cache" / "bookkeeping.lock").write_text("")
    return snapshot


def copy(repo, endpoint, capsys):
    assert main(["--snapshot-dir", str(repo), "--uri", URI, "--endpoint-url", endpoint, "--part-mib", "5"]) == 0
    return capsys.readouterr().out


def objects(s3):
    return {item["Key"]: item for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}


def test_the_snapshot_lands_under_the_prefix_byte_for_byte(s3, repo, endpoint, capsys):
    out = copy(repo, endpoint, capsys)
    keys = set(objects(s3))
    assert keys == {f"llama/tiny/{name}" for name in ("config.json", "tokenizer.json")} | {
        f"llama/tiny/model-0000{i}-of-00002.safetensors" for i in (1, 2)
    }
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == (repo / key.removeprefix("llama/tiny/")).read_bytes()
    uploads = [line.split(" -> ")[1].split(" ")[0] for line in out.splitlines() if line.startswith("upload ")]
    assert uploads[-1] == f"{URI}/config.json"  # an interrupted copy never has config.json
    big = s3.head_object(Bucket=BUCKET, Key="llama/tiny/model-00001-of-00002.safetensors")
    assert big["ETag"].endswith('-3"')  # 12 MiB in 5 MiB parts: multipart
    assert big["ETag"] == s3_etag(repo / "model-00001-of-00002.safetensors", 5 * MIB)


def test_a_second_run_uploads_nothing_and_a_resumed_run_only_what_is_missing_or_changed(s3, repo, endpoint, capsys):
    copy(repo, endpoint, capsys)
    assert "0 uploaded (0 bytes), 4 already present" in copy(repo, endpoint, capsys)
    s3.delete_object(Bucket=BUCKET, Key="llama/tiny/model-00002-of-00002.safetensors")
    (repo / "tokenizer.json").write_text("[]")  # same size, different content
    out = copy(repo, endpoint, capsys)
    assert "2 uploaded" in out and "2 already present" in out
    body = s3.get_object(Bucket=BUCKET, Key="llama/tiny/tokenizer.json")["Body"].read()
    assert body == b"[]"


def test_bad_arguments_are_refused_before_anything_is_copied(repo, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--snapshot-dir", str(repo), "--uri", "s3://model-bucket"])
    assert exit_.value.code == 2
    assert "--uri" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--snapshot-dir", str(repo / "nope"), "--uri", URI])
    assert "not a directory" in capsys.readouterr().err
