"""The syntax Kubernetes gives names and quantities, checked the way the API server checks them.

One place for the grammar of ``k8s.io/apimachinery/pkg/util/validation`` (DNS-1123 labels and
subdomains, DNS-1035 labels, qualified names such as label keys, label values, IANA service names)
and of ``k8s.io/apimachinery/pkg/api/resource`` (quantities), so the config models, the components,
``verify`` and the tests agree on what is valid. Each check returns ``None`` when the value is valid,
else one sentence naming the value, the rule and an example that would work; callers decide whether
that is an exception (config), a violation (verify) or a test failure. Stdlib only.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def dns1123_label(value: Any, max_length: int = DNS1123_LABEL_MAX) -> str | None:
    """A DNS-1123 label (namespaces, container and volume names). ``max_length`` is lower where
    something appends to the name (a Helm release, a node group name AWS prefixes)."""
    if not isinstance(value, str) or len(value) > max_length or not _DNS1123_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1123 label: at most {max_length} characters, lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. 'my-name')"
        )
    return None


def dns1123_subdomain(value: Any, max_length: int = DNS1123_SUBDOMAIN_MAX) -> str | None:
    """A DNS-1123 subdomain (most object names): labels joined by '.'."""
    if not isinstance(value, str) or len(value) > max_length or not _DNS1123_SUBDOMAIN.match(value):
        return (
            f"{value!r} is not a DNS-1123 subdomain: at most {max_length} characters, lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit (e.g. 'example.com')"
        )
    return None


def dns1035_label(value: Any) -> str | None:
    """A DNS-1035 label (Service names: they become DNS names and environment variable prefixes)."""
    if not isinstance(value, str) or len(value) > DNS1123_LABEL_MAX or not _DNS1035_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1035 label: at most 63 characters, lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit (e.g. 'my-name')"
        )
    return None


def qualified_name(value: Any) -> str | None:
    """A label/annotation key: optional DNS-1123 subdomain prefix (<= 253) + '/' + name (<= 63)."""
    if not isinstance(value, str) or not value:
        return f"{value!r} is not a valid key: it must be a non-empty string"
    parts = value.split("/")
    if len(parts) > 2:
        return f"{value!r} is not a valid key: at most one '/' (prefix/name)"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return f"{value!r} is not a valid key: the prefix before '/' must not be empty"
        if dns1123_subdomain(prefix):
            return (
                f"{value!r} is not a valid key: prefix {prefix!r} must be a DNS-1123 subdomain "
                "of at most 253 characters"
            )
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"{value!r} is not a valid key: the name part {name!r} must be at most 63 characters of "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        )
    return None


def label_value(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"{value!r} is not a valid label value: at most 63 characters of alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric (or empty)"
        )
    return None


def iana_svc_name(value: Any) -> str | None:
    """A port name (IANA_SVC_NAME)."""
    if (
        not isinstance(value, str)
        or len(value) > 15
        or not _IANA_SVC_NAME.match(value)
        or "--" in value
        or not re.search(r"[a-z]", value)
    ):
        return (
            f"{value!r} is not a valid port name (IANA_SVC_NAME): at most 15 characters of lowercase letters, "
            "digits and '-', at least one letter, no leading, trailing or double '-'"
        )
    return None


# --- quantities (k8s.io/apimachinery/pkg/api/resource) -------------------------------------------

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

QUANTITY_HELP = (
    "a Kubernetes quantity: a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei (binary), "
    "m, k, M, G, T, P, E (decimal) or an exponent e<N> (e.g. '500m', '1.5Gi', '4096Mi', '2')"
)


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "1.5Gi", "2", "1e3") as a number; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return base * (Decimal(10) ** int(suffix[1:]))
    return base * _SUFFIX[suffix]


def quantity_problem(value: Any) -> str:
    """Why ``value`` is not a quantity, with the nearest valid spelling when there is one."""
    hint = ""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKMGTPE])(i?)[bB]\s*", str(value))
    if match:
        unit = match.group(2).upper() if match.group(2) != "k" else "k"
        decimal_unit = unit if unit != "K" else "k"
        hint = (
            f" (did you mean {match.group(1)}{unit}i for binary or {match.group(1)}{decimal_unit} for decimal units?)"
        )
    return f"{value!r} is not {QUANTITY_HELP}{hint}"


def quantity_value(value: Any) -> Decimal:
    """A quantity known to be valid (one the project rendered), as a number; ValueError otherwise."""
    parsed = parse_quantity(value)
    if parsed is None:
        raise ValueError(quantity_problem(value))
    return parsed
