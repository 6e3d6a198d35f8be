"""``config/README.md``: every config key's type, default and description, generated from the
schema (``src/phasezoo/config.schema.yaml``).

Why generated: the schema is the one source of keys, defaults and descriptions (the workflow
and the CLI validate against it); a hand-written page would fall behind it. The Snakemake
workflow catalog shows ``config/README.md`` on a workflow's page, so it lives there;
``phasezoo config-doc --out config/README.md`` rewrites it and a test checks it is current.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

Node = Mapping[str, Any]
HEADER = ("<!-- Generated from src/phasezoo/config.schema.yaml by `phasezoo config-doc --out "
          "config/README.md`; do not edit by hand (tests/test_packaging.py checks it). -->")


def resolve(node: Node, schema: Node) -> dict[str, Any]:
    """A schema node with its ``$ref`` and ``allOf`` parts merged in (the node's own keys win):
    what a key accepts, in one mapping."""
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    parts = [schema["$defs"][ref.rsplit("/", 1)[1]]] if ref else []
    parts += [*node.get("allOf", ()), {k: v for k, v in node.items() if k not in ("$ref", "allOf")}]
    for part in parts:
        part = resolve(part, schema) if part is not parts[-1] else part
        props = dict(out.get("properties", {}))
        for key, sub in part.get("properties", {}).items():  # allOf narrows a key: merge both
            props[key] = {**props.get(key, {}), **sub}
        out |= part | ({"properties": props} if props else {})
    return out


def type_text(node: Node) -> str:
    """What a key takes: its enum, else its JSON type(s)."""
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kinds = node.get("type", "any")
    return " or ".join(kinds) if isinstance(kinds, list) else kinds


def default_text(node: Node) -> str:
    """A key's default as JSON, or why it has none (a protocol's key, a required axis)."""
    if "default" in node:
        return f"`{json.dumps(node['default'], ensure_ascii=False)}`"
    if str(node.get("description", "")).startswith("Protocol ("):
        return "by `metrics.protocol`"
    return "required"


def cell(text: Any) -> str:
    """Text for one markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def sections(node: Node, schema: Node, path: str) -> Iterator[tuple[str, str, list[str]]]:
    """(section path, its description, its table rows) for ``node`` and every object below it;
    a zoo-name mapping (``zoos``) continues as ``zoos.<name>``."""
    node = resolve(node, schema)
    rows, below = [], []
    for key, sub in node.get("properties", {}).items():
        sub = resolve(sub, schema)
        name = f"{path}.{key}" if path else key
        nested = sub.get("properties") or isinstance(sub.get("additionalProperties"), dict)
        rows.append(f"| `{name}` | {cell(type_text(sub))} | {cell(default_text(sub))} | "
                    f"{cell(sub.get('description', ''))}" + (" (keys below)" if nested else "")
                    + " |")
        if sub.get("properties"):
            below.append((sub, name))
        elif isinstance(sub.get("additionalProperties"), dict):
            below.append((sub["additionalProperties"], f"{name}.<name>"))
    yield path, str(node.get("description", "")), rows
    for sub, name in below:
        yield from sections(sub, schema, name)


def config_doc(schema: Node) -> str:
    """The page: the schema's description, then one table per section (top level, a zoo, each
    of a zoo's sections)."""
    lines = [HEADER, "", "# Configuration keys", "", " ".join(schema["description"].split()), "",
             "Configs are validated against this schema on load (`phasezoo validate`, "
             "`phasezoo run`); an unknown key is refused. How a config is run and checked: "
             "[docs/configuration.md](../docs/configuration.md).", ""]
    for path, description, rows in sections(schema, schema, ""):
        if not rows:
            continue
        lines += [f"## `{path or 'top level'}`", ""]
        if path and description:
            lines += [" ".join(description.split()), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines)
