"""stack.kubernetes_names: the one grammar of names and quantities the config, the components, verify
and the tests share, with the API server's limits and an example of what would work."""

import pytest

from stack.kubernetes_names import (
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    label_value,
    parse_quantity,
    qualified_name,
    quantity_problem,
    quantity_value,
)


def test_quantity_grammar():
    assert parse_quantity("4096Mi") == 4 * 2**30
    assert parse_quantity("93000m") == 93
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("1.5Gi") == int(1.5 * 2**30)
    assert parse_quantity(".5") == parse_quantity("500m")
    for bad in ("12GB", "1 Gi", "Gi", "1e", "1.2.3", "0x10", ""):
        assert parse_quantity(bad) is None, bad


def test_quantity_problem_suggests_the_kubernetes_spelling():
    assert "did you mean 4Gi" in quantity_problem("4 GiB")
    assert "12Gi for binary or 12G for decimal" in quantity_problem("12GB")


def test_quantity_value_refuses_what_is_not_a_quantity():
    assert quantity_value("2Gi") == 2 * 2**30
    with pytest.raises(ValueError, match="'2 GB' is not a Kubernetes quantity"):
        quantity_value("2 GB")


@pytest.mark.parametrize("good", ["a", "llama-3-1-8b", "0abc", "x" * 63])
def test_dns1123_label_accepts(good):
    assert dns1123_label(good) is None


@pytest.mark.parametrize("bad", ["", "Llama", "a_b", "-a", "a-", "a.b", "x" * 64, None, 7])
def test_dns1123_label_rejects_naming_the_rule(bad):
    problem = dns1123_label(bad)
    assert problem is not None and repr(bad) in problem and "DNS-1123 label" in problem


def test_dns1123_label_takes_a_shorter_limit_and_names_it():
    assert dns1123_label("x" * 40, max_length=40) is None
    assert "at most 40 characters" in dns1123_label("x" * 41, max_length=40)


def test_subdomain_and_dns1035():
    assert dns1123_subdomain("gpu-inference.io") is None
    assert dns1123_subdomain("x" * 254) is not None and dns1123_subdomain("a..b") is not None
    assert dns1035_label("llama") is None and dns1035_label("7llama") is not None


def test_label_keys_and_values():
    assert qualified_name("nvidia.com/gpu.product") is None
    assert "prefix" in qualified_name("Bad_Prefix/x")
    assert "at most one '/'" in qualified_name("a/b/c")
    assert label_value("") is None and label_value("NVIDIA-H100-80GB-HBM3") is None
    assert label_value("a b") is not None and label_value("x" * 64) is not None
