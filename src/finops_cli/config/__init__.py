"""Find, read, validate and show the YAML configuration.

Looked up from ``--config``, ``$FINOPS_CONFIG``, ``./finops.yaml`` and
``$XDG_CONFIG_HOME/finops/config.yaml`` (``~/.config/finops/config.yaml``), in that order.
Every error names the file, the line and the key path, and says what was expected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finops_cli.budgets.config import CHANNEL_TYPES
from finops_cli.config.model import ConfigFile
from finops_cli.config.yamlfile import KeyPath, YamlDocument, format_key_path, load_yaml
from finops_cli.errors import ConfigError
from finops_cli.sources.base import SourceConfig


@dataclass
class Config:
    path: Path | None
    file: ConfigFile
    sources: list[SourceConfig] = field(default_factory=list)
    document: YamlDocument | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def allocation(self):
        return self.file.allocation

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} in {self.path} (sources: {known})")

    def store_path(self, override: str | None = None) -> Path:
        from finops_cli.store import default_store_path

        if override:
            return Path(override).expanduser()
        if self.file.store:
            path = Path(os.path.expanduser(self.file.store))
            return path if path.is_absolute() else self.base_dir / path
        return default_store_path()


def candidate_paths(explicit: str | None = None) -> list[tuple[str, Path]]:
    """Where a config is looked for, in order, with the reason each place is on the list."""
    out: list[tuple[str, Path]] = []
    if explicit:
        out.append(("--config", Path(explicit).expanduser()))
    env = os.environ.get("FINOPS_CONFIG")
    if env:
        out.append(("$FINOPS_CONFIG", Path(env).expanduser()))
    out.append(("current folder", Path.cwd() / "finops.yaml"))
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    out.append(("user config", Path(xdg) / "finops" / "config.yaml"))
    return out


def find_config(explicit: str | None = None) -> Path:
    candidates = candidate_paths(explicit)
    for reason, path in candidates:
        if reason in ("--config", "$FINOPS_CONFIG"):
            if not path.is_file():
                raise ConfigError(f"config file {path} (from {reason}) does not exist")
            return path
        if path.is_file():
            return path
    looked = "; ".join(f"{path} ({reason})" for reason, path in candidates)
    raise ConfigError(
        f"no finops config found; looked in: {looked}",
        hint="start from config.example.yaml, or run `finops demo` for a working example",
    )


def load_config(explicit: str | None = None, path: Path | None = None) -> Config:
    path = path or find_config(explicit)
    document = load_yaml(path)
    return validate(document)


def validate(document: YamlDocument) -> Config:
    from finops_cli.sources import source_type

    data = document.data
    if not isinstance(data, dict):
        raise ConfigError(f"{document.path}: the config must be a mapping of keys (found {type(data).__name__})")
    errors: list[str] = []
    try:
        file = ConfigFile.model_validate(data)
    except ValidationError as exc:
        errors.extend(_messages(exc, document, ()))
        file = None
    sources: list[SourceConfig] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data.get("sources") or [] if isinstance(data.get("sources"), list) else []):
        where = ("sources", index)
        if not isinstance(entry, dict):
            errors.append(f"{document.where(where)}: expected a mapping with name and type")
            continue
        kind = entry.get("type")
        if not kind:
            errors.append(f"{document.where(where)}: missing key 'type'")
            continue
        try:
            config_class = source_type(str(kind), document.where(where + ("type",))).load().config_class
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        try:
            source = config_class.model_validate(entry)
        except ValidationError as exc:
            errors.extend(_messages(exc, document, where))
            continue
        if source.name in seen:
            errors.append(f"{document.where(where + ('name',))}: duplicate source name {source.name!r} "
                          f"(also sources[{seen[source.name]}])")
            continue
        seen[source.name] = index
        sources.append(source)
    if file is not None:
        from finops_cli.budgets.config import cross_check

        for key_path, message in cross_check(file.budgets, file.notifications, file.allocation, document.from_env):
            errors.append(f"{document.where(key_path)}: {message}")
    if errors:
        head = errors[0] if len(errors) == 1 else f"{len(errors)} problems in {document.path}:\n  " + "\n  ".join(errors)
        raise ConfigError(head)
    return Config(path=document.path, file=file, sources=sources, document=document)


def _messages(exc: ValidationError, document: YamlDocument, prefix: KeyPath) -> list[str]:
    out = []
    for error in exc.errors():
        loc = prefix + tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if len(loc) > 2 and loc[0] == "notifications" and loc[2] in CHANNEL_TYPES:
            loc = loc[:2] + loc[3:]  # pydantic names the union member (the channel type) in the path
        kind = error["type"]
        if kind == "extra_forbidden":
            parent = format_key_path(loc[:-1]) or "the top level"
            message = f"unknown key {loc[-1]!r} in {parent}"
            known = _known_keys(exc, loc, prefix)
            if known:
                message += f" (known keys: {known})"
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            message = f"{error['msg'][0].lower()}{error['msg'][1:]}{shown}"
        out.append(f"{document.where(loc)}: {message}")
    return out


def _known_keys(exc: ValidationError, loc: KeyPath, prefix: KeyPath) -> str:
    from finops_cli.budgets import config as b
    from finops_cli.config import model as m

    shape = tuple("[]" if isinstance(p, int) else p for p in loc[:-1])
    model = {(): m.ConfigFile, ("allocation",): m.AllocationConfig, ("report",): m.ReportConfig,
             ("tags",): m.TagPolicy, ("budgets", "[]"): b.BudgetConfig,
             ("budgets", "[]", "thresholds", "[]"): b.Threshold}.get(shape)
    if model is None:
        return ""
    return ", ".join(model.model_fields)


SECRET_KEY = re.compile(r"(secret|token|password|passwd|api_?key|access_?key|routing_key|webhook|credential)",
                        re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(?<=://)([^/@\s]+)@")


def mask(value: Any, key_path: KeyPath, from_env: set[KeyPath]) -> Any:
    """Replace secrets by a fixed mask; keep structure so a person can still read the config."""
    if isinstance(value, dict):
        return {k: mask(v, key_path + (k,), from_env) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key_path + (i,), from_env) for i, v in enumerate(value)]
    key = key_path[-1] if key_path and isinstance(key_path[-1], str) else ""
    if value is not None and (key_path in from_env or SECRET_KEY.search(key)):
        if key.endswith("_env"):  # the *name* of a variable is not a secret
            return value
        return "****"
    if isinstance(value, str):
        return URL_CREDENTIALS.sub("****@", value)
    return value


def masked_text(text: str) -> str:
    """Mask credentials embedded in URLs inside free text (error messages, logs)."""
    return URL_CREDENTIALS.sub("****@", text)


def shown(config: Config) -> dict[str, Any]:
    """The effective configuration (defaults filled in), secrets masked."""
    data = config.file.model_dump(mode="json", exclude={"sources"})
    data["sources"] = [s.model_dump(mode="json", exclude_none=True) for s in config.sources]
    from_env = config.document.from_env if config.document else set()
    return mask(data, (), from_env)
