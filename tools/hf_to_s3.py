"""Copy a Hugging Face model repo to S3 once, so servers stream it from there (``source: {type: s3}``).

    python -m tools.hf_to_s3 --repo meta-llama/Llama-3.1-70B-Instruct --revision <commit> \\
        --uri s3://my-models/llama-3.1-70b-instruct [--local-dir /mnt/nvme/hf] [--snapshot-dir DIR]

Resumable at both ends: ``huggingface_hub.snapshot_download`` into ``--local-dir`` skips what is
already downloaded, and each file is uploaded only when the object under the prefix is missing or
differs in size or ETag (computed locally the way S3 computes it for the part size used here, so
a finished object is recognised without reading it back). Large files go up in multipart parts;
boto3 aborts a failed multipart upload. ``config.json`` is uploaded last, so an interrupted copy
never looks complete to a server. ``--snapshot-dir`` skips the download and copies a directory
that already holds the snapshot (tests, or a copy made elsewhere).

Credentials and region come from the usual AWS chain; ``--endpoint-url`` targets an S3-compatible
server. The Hugging Face token comes from ``HF_TOKEN`` as huggingface_hub reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stack.model_source_s3 import parse_s3_uri

PART_BYTES = 64 * 1024 * 1024
# What a server needs from a repo: configs, tokenizer files, safetensors weights (not .bin/.pth copies).
DEFAULT_ALLOW_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja", "*.py")
LAST = "config.json"


def s3_etag(path: Path, part_bytes: int = PART_BYTES) -> str:
    """The ETag S3 gives an object uploaded from ``path`` (single PUT below ``part_bytes``, else multipart)."""
    size = path.stat().st_size
    if size < part_bytes:
        return '"' + hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() + '"'
    digests = []
    with open(path, "rb") as handle:
        while chunk := handle.read(part_bytes):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f'"{combined}-{len(digests)}"'


def snapshot_files(snapshot: Path) -> list[Path]:
    """The files to copy, relative to the snapshot, ``config.json`` last; huggingface_hub's own
    bookkeeping (``.cache``) and hidden files stay behind."""
    files = [
        p.relative_to(snapshot)
        for p in sorted(snapshot.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(snapshot).parts)
    ]
    return sorted(files, key=lambda p: (str(p) == LAST, str(p)))


@dataclass
class CopyReport:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0


def copy_snapshot(
    snapshot: Path,
    uri: str,
    client,
    part_bytes: int = PART_BYTES,
    log: Callable[[str], None] = print,
) -> CopyReport:
    """Upload what is missing or different under ``uri``; return what was uploaded and skipped."""
    from boto3.s3.transfer import TransferConfig

    bucket, prefix = parse_s3_uri(uri)
    config = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes)
    report = CopyReport()
    files = snapshot_files(snapshot)
    if not any(str(f) == LAST for f in files):
        raise SystemExit(f"{snapshot}: no {LAST}; not a model snapshot")
    for relative in files:
        path = snapshot / relative
        key = f"{prefix}/{relative.as_posix()}"
        size = path.stat().st_size
        if _present(client, bucket, key, size, lambda p=path: s3_etag(p, part_bytes)):
            report.skipped.append(key)
            continue
        log(f"upload {path} -> s3://{bucket}/{key} ({size} bytes)")
        client.upload_file(str(path), bucket, key, Config=config)
        report.uploaded.append(key)
        report.bytes_uploaded += size
    return report


def _present(client, bucket: str, key: str, size: int, etag: Callable[[], str]) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return head["ContentLength"] == size and head["ETag"] == etag()


def download(repo: str, revision: str | None, local_dir: Path, allow_patterns: Iterable[str]) -> Path:
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(repo_id=repo, revision=revision, local_dir=local_dir, allow_patterns=list(allow_patterns))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.hf_to_s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", required=True, help="s3://bucket/prefix to copy into")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--repo", help="Hugging Face repo id, owner/name")
    source.add_argument("--snapshot-dir", type=Path, help="copy this directory instead of downloading")
    parser.add_argument("--revision", help="commit, branch or tag (pin a commit for reproducible copies)")
    parser.add_argument("--local-dir", type=Path, help="download directory (default ./hf-<owner>--<name>)")
    parser.add_argument("--allow-pattern", action="append", dest="allow_patterns", help="repeatable glob")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint instead of AWS S3")
    parser.add_argument("--part-mib", type=int, default=PART_BYTES // (1024 * 1024), help="multipart part size")
    args = parser.parse_args(argv)
    try:
        parse_s3_uri(args.uri)
    except ValueError as error:
        parser.error(f"--uri: {error}")
    if args.part_mib < 5:
        parser.error(f"--part-mib {args.part_mib}: S3 parts are at least 5 MiB")
    if args.snapshot_dir is not None:
        if not args.snapshot_dir.is_dir():
            parser.error(f"--snapshot-dir {args.snapshot_dir}: not a directory")
        snapshot = args.snapshot_dir
    else:
        local_dir = args.local_dir or Path(f"hf-{args.repo.replace('/', '--')}")
        snapshot = download(args.repo, args.revision, local_dir, args.allow_patterns or DEFAULT_ALLOW_PATTERNS)
    import boto3

    client = boto3.client("s3", endpoint_url=args.endpoint_url)
    report = copy_snapshot(snapshot, args.uri, client, part_bytes=args.part_mib * 1024 * 1024)
    print(
        f"{args.uri}: {len(report.uploaded)} uploaded ({report.bytes_uploaded} bytes), "
        f"{len(report.skipped)} already present"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
