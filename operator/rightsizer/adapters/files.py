"""Policy files: YAML (one or many documents) or JSON, from files or folders.

Hostile input is refused before it is parsed further: files over 1 MiB, YAML aliases
(no billion laughs), and anything that is not an EfficiencyPolicy object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from rightsizer.api.v1alpha1 import EfficiencyPolicy, PolicyError, parse_policy

MAX_POLICY_FILE_BYTES = 1 << 20
_SUFFIXES = (".yaml", ".yml", ".json")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in policies", event.start_mark
            )
        return super().compose_node(parent, index)


def policy_paths(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        else:
            yield path


def read_documents(path: Path) -> list[Any]:
    """The documents in one file; raise PolicyError for unreadable or hostile files."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            raise PolicyError(source, [f"(file): {size} bytes, at most {MAX_POLICY_FILE_BYTES}"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(source, [f"(file): cannot be read: {error}"]) from None
    try:
        return [doc for doc in yaml.load_all(text, Loader=_NoAliasLoader) if doc is not None]
    except yaml.YAMLError as error:
        raise PolicyError(source, [f"(file): not valid YAML: {error}"]) from None


def load_policies(paths: Iterable[Path]) -> list[EfficiencyPolicy]:
    """Every policy in the files and folders given; PolicyError lists every problem found."""
    policies: list[EfficiencyPolicy] = []
    problems: list[str] = []
    for path in policy_paths(paths):
        try:
            documents = read_documents(path)
        except PolicyError as error:
            problems.extend(f"{path}: {p}" for p in error.problems)
            continue
        for index, document in enumerate(documents):
            label = f"{path}" if len(documents) == 1 else f"{path}[{index}]"
            try:
                policies.append(parse_policy(document, source=label))
            except PolicyError as error:
                problems.extend(f"{label}: {p}" for p in error.problems)
    if problems:
        raise PolicyError("policies", problems)
    names = [p.name for p in policies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyError("policies", [f"metadata.name: used twice: {', '.join(duplicates)}"])
    return policies
