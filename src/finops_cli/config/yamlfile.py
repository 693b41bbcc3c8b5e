"""Read a YAML config file into plain data, remembering where every key came from.

Besides the data, the loader returns the line of every key path (so errors can say
``finops.yaml:12: sources[0].path``), and the set of key paths whose value came from a
``${ENV}`` reference (so ``config show`` can mask them). Duplicate keys are an error:
YAML silently keeps the last one, which hides mistakes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finops_cli.errors import ConfigError

KeyPath = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    from_env: set[KeyPath] = field(default_factory=set)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the deepest known prefix of ``key_path``."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None

    def where(self, key_path: KeyPath) -> str:
        line = self.line_of(key_path)
        location = f"{self.path}:{line}" if line else str(self.path)
        return f"{location}: {format_key_path(key_path)}" if key_path else location


def format_key_path(key_path: KeyPath) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path, environ: dict[str, str] | None = None) -> YamlDocument:
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from exc
    doc = YamlDocument(path=path, data=None)
    doc.data = {} if root is None else _build(root, (), doc, environ)
    return doc


def _build(node: yaml.Node, key_path: KeyPath, doc: YamlDocument, environ) -> Any:
    doc.lines.setdefault(key_path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise ConfigError(
                    f"{path_line(doc, key_node)}: duplicate key {format_key_path(key_path + (key,))!r}"
                )
            child = key_path + (key,)
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, doc, environ)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, key_path + (i,), doc, environ) for i, item in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, str) and "${" in value:
        value = _interpolate(value, key_path, doc, environ)
    return value


def path_line(doc: YamlDocument, node: yaml.Node) -> str:
    return f"{doc.path}:{node.start_mark.line + 1}"


_CONSTRUCTOR = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    except (ValueError, yaml.constructor.ConstructorError):
        return node.value  # e.g. 2024-13-45 looks like a date but is not: let validation say so


def _interpolate(value: str, key_path: KeyPath, doc: YamlDocument, environ) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{doc.where(key_path)}: environment variable {name} is not set "
            f"(referenced as ${{{name}}}; use ${{{name}:-default}} for a default)"
        )

    doc.from_env.add(key_path)
    return _ENV_REF.sub(replace, value)
