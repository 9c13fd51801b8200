"""Model source ``s3``: the weights live under an S3 prefix and vLLM streams them to the GPUs.

``source: {type: s3, uri: s3://bucket/prefix, kmsKeyArn: ..., roleScope: model}`` in a model's
config. The server then runs ``vllm serve s3://bucket/prefix --load-format runai_streamer`` and
reads with EKS Pod Identity credentials scoped to that prefix (``components.model_access``). The
prefix must hold a Hugging Face snapshot (config.json, tokenizer files, ``*.safetensors``), as
``python -m tools.hf_to_s3`` writes it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# S3's bucket naming rules (general purpose buckets): 3-63 characters of lower-case letters,
# digits, '.' and '-', starting and ending with a letter or digit, no '..', not an IP address.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at either end).

    Raises ValueError naming the URI, what is wrong, and an example that would work.
    """
    example = "e.g. s3://my-models/llama-3.1-70b-instruct"
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an S3 URI: it must start with s3:// ({example})")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not BUCKET_NAME.match(bucket) or ".." in bucket or IP_ADDRESS.match(bucket):
        raise ValueError(
            f"{uri!r}: {bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, '.' or '-', "
            f"starting and ending with a letter or digit) ({example})"
        )
    prefix = prefix.strip("/")
    if not prefix:
        raise ValueError(
            f"{uri!r} names a whole bucket: give the prefix that holds the model's files, so that the "
            f"pod's read access can be limited to it ({example})"
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"{uri!r}: the prefix must not contain empty, '.' or '..' parts ({example})")
    if any(ch in prefix for ch in "*?\\"):
        raise ValueError(f"{uri!r}: the prefix must not contain '*', '?' or '\\' (IAM wildcards) ({example})")
    return bucket, prefix


class S3Source(BaseModel):
    """Stream the weights from S3 with the Run:ai Model Streamer (``--load-format runai_streamer``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    type: Literal["s3"]
    uri: str = Field(description="s3://bucket/prefix holding config.json, tokenizer and *.safetensors")
    kms_key_arn: str | None = Field(None, description="KMS key the objects are encrypted with (SSE-KMS)")
    role_scope: Literal["model", "namespace"] = Field(
        "model", description="One IAM role per model (default) or one per namespace, shared by its S3 models"
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        bucket, prefix = parse_s3_uri(value)
        return f"s3://{bucket}/{prefix}"

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a KMS key ARN: use arn:aws:kms:<region>:<account>:key/<key-id> "
                "(an alias ARN cannot be granted kms:Decrypt)"
            )
        return value

    @property
    def bucket(self) -> str:
        return parse_s3_uri(self.uri)[0]

    @property
    def prefix(self) -> str:
        return parse_s3_uri(self.uri)[1]
