"""The dataset and model registries as the config sees them: names and options, without torch.
What is known of a dataset beyond its options (task kind, sizes, shape) is its record in
:mod:`phasezoo.dataset_facts`.

The registries live in modules that import torch, which validating a config must not pay for
(``phasezoo validate``, every Snakemake parse). So the registered names and their keyword
arguments are read from the package's source with :mod:`ast` (:func:`registered`): the same
decorated signatures that ``create_dataset`` and ``create_model`` check with
:func:`inspect.signature` (:func:`options_of`). Both report unknown options the same way
(:func:`unknown_options`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from importlib import resources
from typing import Any, Callable, Iterator

# Where each registry's decorated functions live, the decorator, and the keyword arguments the
# factory fills itself (not options): as in phasezoo.data.create_dataset / models.create_model.
REGISTRIES = {
    "dataset": ("phasezoo.data.registry", "_DATASETS", "data", "register_dataset", ("root",)),
    "model": ("phasezoo.models", "_MODELS", "models.py", "register_model",
              ("width", "input_shape", "num_classes")),
}
# The models whose depth is the config's ``model.depth`` (phasezoo.models.model_kwargs); the
# others ignore that key (a transformer's depth is its ``model.options.depth``).
DEPTH_MODELS = frozenset({"mlp", "pinn-mlp"})


def options_of(kind: str, fn: Callable) -> tuple[str, ...]:
    """The options of a registered ``kind`` function: its keyword arguments that the factory
    does not fill itself."""
    skip = REGISTRIES[kind][-1]
    return tuple(p for p in inspect.signature(fn).parameters if p not in skip)


def unknown_options(kind: str, name: str, options: dict[str, Any],
                    valid: tuple[str, ...] | list[str]) -> str | None:
    """What is wrong with ``options`` for ``kind`` ``name`` (None if nothing): the one wording
    of the config check and of ``create_dataset`` / ``create_model``."""
    unknown = sorted(set(options) - set(valid))
    if not unknown:
        return None
    return f"{unknown} not options of {kind} '{name}'; its options are {list(valid)}"


def registered(kind: str) -> dict[str, tuple[str, ...]]:
    """Registered ``kind`` ("dataset" or "model") names and their options, without torch.

    Read from the package source (:func:`_source_registry`), plus whatever the live registry
    holds if its module is already imported (something registered at run time, in-process).
    """
    module_name, attr, *_ = REGISTRIES[kind]
    found = dict(_source_registry(kind))
    live = getattr(sys.modules.get(module_name), attr, {})
    for name, fn in live.items():
        found[name] = options_of(kind, fn)
    return found


@functools.cache
def _source_registry(kind: str) -> dict[str, tuple[str, ...]]:
    """Functions decorated with the registry's decorator in the package source: name ('_' →
    '-', as the decorators do) → keyword arguments, in ``inspect.signature`` order."""
    skip = REGISTRIES[kind][-1]
    found: dict[str, tuple[str, ...]] = {}
    for name, node, _ in _decorated(kind):
        a = node.args
        params = [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []),
                  *a.kwonlyargs, *([a.kwarg] if a.kwarg else [])]
        found[name] = tuple(p.arg for p in params if p.arg not in skip)
    return found


@functools.cache
def option_defaults(kind: str, name: str) -> dict[str, Any]:
    """The default values of a registered ``kind`` function's options, read from source, e.g.
    ``{"depth": 6, "patch_size": 4}`` for model ``vit``. Why: the config check sizes a model and
    types its options without importing torch.

    Raises:
        ValueError: naming the function and option, for a default that is not a literal (it
            cannot be read without running the module; no default is guessed for it).
    """
    for found, node, _ in _decorated(kind):
        if found == name:
            a = node.args
            pairs = [*zip(a.args[len(a.args) - len(a.defaults):], a.defaults),
                     *((k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None)]
            return {k.arg: _literal(kind, name, k.arg, d) for k, d in pairs}
    return {}


def _literal(kind: str, name: str, option: str, node: ast.expr) -> Any:
    """The value of a registered function's option default, which must be a literal."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{kind} '{name}': the default of option '{option}' is not a literal "
                         f"({ast.unparse(node)}); the config check reads defaults without "
                         "importing the registry") from None


def _decorated(kind: str) -> Iterator[tuple[str, ast.FunctionDef, ast.expr]]:
    """(registered name, function node, decorator node) of every function in the package
    source decorated with ``kind``'s registry decorator, files in name order."""
    _, _, where, decorator, _ = REGISTRIES[kind]
    root = resources.files("phasezoo").joinpath(where)
    files = sorted((f for f in root.iterdir() if f.name.endswith(".py")), key=lambda f: f.name) \
        if root.is_dir() else [root]
    for f in files:
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if _decorator_name(deco) == decorator:
                        yield node.name.replace("_", "-"), node, deco


def _decorator_name(node: ast.expr) -> str | None:
    """``register_x``, ``register_x(...)`` or ``module.register_x`` → ``register_x``."""
    node = node.func if isinstance(node, ast.Call) else node
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None
