import pytest
from pydantic import ValidationError

from stack.model_source_s3 import S3Source, parse_s3_uri

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_a_config_entry_reads_with_camel_case_keys():
    source = S3Source.model_validate({"type": "s3", "uri": "s3://my-models/llama/70b/", "kmsKeyArn": KEY})
    assert (source.bucket, source.prefix, source.kms_key_arn) == ("my-models", "llama/70b", KEY)
    assert source.uri == "s3://my-models/llama/70b"
    assert source.role_scope == "model"


@pytest.mark.parametrize(
    "uri, says",
    [
        ("https://my-models.s3.amazonaws.com/llama", "must start with s3://"),
        ("s3://My_Models/llama", "not a valid bucket name"),
        ("s3://my-models", "names a whole bucket"),
        ("s3://my-models/", "names a whole bucket"),
        ("s3://my-models/a/../b", "'..'"),
        ("s3://my-models/llama*", "IAM wildcards"),
        ("s3://192.168.1.1/llama", "not a valid bucket name"),
    ],
)
def test_a_bad_uri_is_rejected_with_the_reason_and_an_example(uri, says):
    with pytest.raises(ValidationError) as error:
        S3Source.model_validate({"type": "s3", "uri": uri})
    text = str(error.value)
    assert says in text and "e.g. s3://" in text and "uri" in text


def test_unknown_keys_and_a_non_key_arn_are_rejected():
    with pytest.raises(ValidationError, match="bucketRegion"):
        S3Source.model_validate({"type": "s3", "uri": "s3://b-1/p", "bucketRegion": "us-east-1"})
    with pytest.raises(ValidationError, match="not a KMS key ARN"):
        S3Source.model_validate({"type": "s3", "uri": "s3://b-1/p", "kmsKeyArn": "arn:aws:kms:us-east-1:1:alias/x"})


def test_parse_keeps_nested_prefixes():
    assert parse_s3_uri("s3://a.b-c/x/y/z/") == ("a.b-c", "x/y/z")
