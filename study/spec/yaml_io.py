"""Reading a study spec's YAML safely: UTF-8 only, and aliases that expand past a bound refused before expansion."""

from __future__ import annotations

from pathlib import Path

import yaml

from study.errors import StudyError

MAX_YAML_NODES = 100_000  # a spec is a few hundred nodes; aliases that expand beyond this are refused (alias bombs)


def _expanded_nodes(node, memo: dict) -> int:
    """How many nodes the YAML graph holds once its aliases are expanded (shared sub-graphs counted each time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle counts once (PyYAML refuses recursive aliases in safe_load anyway)
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_nodes(c, memo) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        n = 1
    memo[key] = n
    return n


def read_yaml(path: Path):
    """The YAML document of `path`; one-line StudyError for undecodable, malformed or alias-bomb files."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise StudyError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the spec as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_nodes(node, {}) > MAX_YAML_NODES:
            raise StudyError(f"{path}: its YAML aliases expand to more than {MAX_YAML_NODES:,} values; a study spec "
                             f"is far smaller (an alias bomb?)")
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise StudyError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
