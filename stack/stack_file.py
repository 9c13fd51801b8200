"""Reading ``Pulumi.<stack>.yaml`` offline (``make synth``, the tests) as strictly as the Pulumi CLI reads it.

The CLI parses stack files with a Go YAML decoder that refuses a mapping key given twice
("mapping key ... already defined at line N"); PyYAML keeps the last one silently, so a stack that
``pulumi up`` refuses would synthesize. Here a syntax error or a duplicate key is a
``StackFileError`` naming the file, the line and the column, never a YAML traceback.

What the CLI accepts but the program would misread is reported too: config written under a
namespace that is a near-miss of the project's (``gpu-infernce:models``), which the program never
sees, so the stack would come up with no models at all.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from stack.project import PROJECT

# Namespaces a stack file of this project legitimately holds besides its own.
PROVIDER_NAMESPACES = ("aws", "kubernetes", "eks", "pulumi")


class StackFileError(ValueError):
    """A stack file the Pulumi CLI would refuse, or whose config the program would not see."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, as the CLI's YAML decoder does."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a list or a mapping as a key)
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar, not a list or mapping", key_node.start_mark
            ) from None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"mapping key {key!r} already defined at line {first.start_mark.line + 1} "
                "(the Pulumi CLI refuses duplicate keys; keep one)",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_stack_text(text: str, source: str) -> dict[str, Any]:
    """The ``config:`` map of a stack file's text; ``source`` names it in errors (a path)."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = error.problem or error.context or "invalid YAML"
        context = f" ({error.context})" if error.context and error.problem else ""
        if "block" in problem:
            context += "; check this line's indentation against the lines above it"
        raise StackFileError(f"{where}: {problem}{context}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{source}: not valid YAML: {' '.join(str(error).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{source}: the top level must be a mapping (config: ...), not {type(data).__name__}")
    config = data.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(f"{source}: config must be a mapping of namespace:key to values, not {config!r:.60}")
    problems = [f"{source}: {p}" for p in namespace_problems(config)]
    if problems:
        raise StackFileError("\n".join(problems))
    return dict(config)


def read_stack_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such stack file (create it, or pick a stack: dev, prod, ...)") from None
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return parse_stack_text(text, str(path))


def namespace_problems(config: dict[Any, Any], project: str = PROJECT) -> list[str]:
    """Keys under a namespace that looks like a misspelling of the project's: the program never sees them."""
    problems = []
    for key in config:
        if not isinstance(key, str):
            problems.append(f"config key {key!r} must be a string such as {project}:models")
            continue
        namespace, _, name = key.rpartition(":")
        if not namespace or namespace == project or namespace in PROVIDER_NAMESPACES:
            continue
        if difflib.get_close_matches(namespace, [project], n=1, cutoff=0.75):
            problems.append(
                f"config key {key!r}: namespace {namespace!r} is not this project's ({project!r}), so the program "
                f"never reads it; write {project}:{name}"
            )
    return problems
