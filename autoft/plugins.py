"""Finding plugins and collecting what they register.

Plugins come from the entry-point group ``autoft`` (autoft's own built-ins are
registered there exactly like a third party's) and from local Python files a
study names. :func:`load_plugins` returns a :class:`Registry` of datasets,
strategies, metrics and search backends that knows where each came from.

Set ``AUTOFT_PLUGINS`` to a comma-separated list of entry-point names to load
only those third-party plugins (``AUTOFT_PLUGINS=`` loads none of them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .backends import Backend
from .data import Dataset
from .errors import PluginError, type_and_first_line
from .metrics import Metric
from .strategies import Strategy

GROUP = "autoft"
BUILTIN_DIST = "autoft"
NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Entry:
    """A registered thing and the plugin it came from."""

    name: str
    obj: Any
    plugin: str
    origin: str


@dataclass
class PluginInfo:
    name: str
    origin: str
    registers: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """What the loaded plugins registered, by kind and name."""

    manager: pluggy.PluginManager
    datasets: dict[str, Entry] = field(default_factory=dict)
    strategies: dict[str, Entry] = field(default_factory=dict)
    metrics: dict[str, Entry] = field(default_factory=dict)
    backends: dict[str, Entry] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)

    def dataset(self, name: str) -> type[Dataset]:
        return self._get(self.datasets, "dataset", name).obj

    def strategy(self, name: str) -> type[Strategy]:
        return self._get(self.strategies, "strategy", name).obj

    def metric(self, name: str) -> Metric:
        return self._get(self.metrics, "metric", name).obj

    def backend(self, name: str) -> type[Backend]:
        return self._get(self.backends, "backend", name).obj

    def metric_table(self) -> dict[str, Metric]:
        return {name: e.obj for name, e in self.metrics.items()}

    @staticmethod
    def _get(table: dict[str, Entry], kind: str, name: str) -> Entry:
        if name not in table:
            raise PluginError(f"unknown {kind} '{name}'; available: {', '.join(sorted(table)) or 'none'}")
        return table[name]

    @property
    def hook(self):
        return self.manager.hook

    def notify(self, event: str, **kwargs: Any) -> None:
        """Call an event hook (``trial_finished``, ``study_finished``) as pluggy does; an implementation that
        raises, or calls ``sys.exit()``, stops the study with one line naming its plugin."""
        caller = getattr(self.manager.hook, event)
        try:
            caller(**kwargs)
        except (Exception, SystemExit) as exc:
            plugins = {
                impl.function.__code__: impl.plugin_name
                for impl in caller.get_hookimpls()
                if hasattr(impl.function, "__code__")
            }
            frames = traceback.walk_tb(exc.__traceback__)
            plugin = next((plugins[f.f_code] for f, _ in frames if f.f_code in plugins), "an unknown plugin")
            raise PluginError(
                f"plugin {plugin} failed in {event}: {type_and_first_line(exc)}; the study stopped there (what it "
                "recorded is kept: fix the plugin and run the same command to go on)"
            ) from exc


def load_plugins(files: list[Path] = ()) -> Registry:
    """Load entry-point plugins and the given local plugin files; collect what they register."""
    pm = pluggy.PluginManager("autoft")
    pm.add_hookspecs(hookspecs)
    origins: dict[str, str] = {}
    for name, module, origin in _entry_point_plugins():
        _check_hooks(pm, module, f"'{name}' ({origin})")
        pm.register(module, name=name)
        origins[name] = origin
    for path in files:
        module = load_file(path)
        name = f"file:{path}"
        _check_hooks(pm, module, f"file '{path}'")
        pm.register(module, name=name)
        origins[name] = str(path)
    registry = Registry(pm)
    for plugin_name, origin in origins.items():
        registry.plugins.append(PluginInfo(plugin_name, origin))
    _collect(registry, origins)
    return registry


def _entry_point_plugins():
    """(name, module, origin) for each plugin in the entry-point group, built-ins first."""
    only = os.environ.get("AUTOFT_PLUGINS")
    allowed = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    found = []
    seen_builtin = False
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist else "unknown"
        builtin = dist.lower() == BUILTIN_DIST
        seen_builtin |= builtin
        if not builtin and allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:
            raise PluginError(
                f"plugin '{ep.name}' from package '{dist}' failed to load: {type_and_first_line(exc)}"
            ) from exc
        version = ep.dist.version if ep.dist else "?"
        label = "built-in" if builtin else f"{dist} {version}"
        found.append((not builtin, ep.name, module, f"{label} (entry point {ep.value})"))
    if not seen_builtin:
        raise PluginError("autoft's built-in plugins are not installed; install autoft with pip (pip install -e .)")
    found.sort(key=lambda item: item[0])
    return [(name, module, origin) for _, name, module, origin in found]


def load_file(path: Path) -> ModuleType:
    """Import a local plugin file named by a study."""
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"plugin file '{path}' does not exist")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    module_name = f"autoft_local_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file '{path}' is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"plugin file '{path}' failed to load: {type_and_first_line(exc)}") from exc
    except SystemExit as exc:  # a script's sys.exit() or argparse run on import: it is not the study's to end
        del sys.modules[module_name]
        raise PluginError(
            f"plugin file '{path}' called sys.exit({exc.code!r}) while loading; a plugin must not exit"
        ) from exc
    return module


def _check_hooks(pm: pluggy.PluginManager, module: ModuleType, plugin: str) -> None:
    """Name in one line what pluggy would refuse (a hook function taking arguments its hook does not give, in
    a multi-line message) or never call (a misspelt hook name, silently ignored)."""
    hooks = sorted(name for name in vars(pm.hook) if not name.startswith("_"))
    for attr in dir(module):
        if pm.parse_hookimpl_opts(module, attr) is None:
            continue
        caller = getattr(pm.hook, attr, None)
        if caller is None or caller.spec is None:
            raise PluginError(f"plugin {plugin}: {attr} is not an autoft hook; the hooks are {', '.join(hooks)}")
        parameters = inspect.signature(getattr(module, attr)).parameters.values()
        wanted = [p.name for p in parameters if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
        unknown = [name for name in wanted if name not in caller.spec.argnames]
        if unknown:
            raise PluginError(
                f"plugin {plugin}: {attr}({', '.join(wanted)}) asks for {', '.join(map(repr, unknown))}, which the "
                f"hook does not give; it gives {', '.join(caller.spec.argnames)}"
            )


def _collect(registry: Registry, origins: dict[str, str]) -> None:
    kinds = {
        "register_datasets": ("dataset", registry.datasets, _check_dataset),
        "register_strategies": ("strategy", registry.strategies, _check_strategy),
        "register_metrics": ("metric", registry.metrics, _check_metric),
        "register_backends": ("backend", registry.backends, _check_backend),
    }
    infos = {info.name: info for info in registry.plugins}
    for hook_name, (kind, table, check) in kinds.items():
        caller = getattr(registry.manager.hook, hook_name)
        # hookimpls come last-registered first; reverse so built-ins register before others
        for impl in reversed(caller.get_hookimpls()):
            plugin = impl.plugin_name

            def register(obj: Any, *more: Any, _plugin=plugin, _kind=kind, _table=table, _check=check, _hook=hook_name):
                if more:
                    raise PluginError(
                        f"plugin {_plugin}: {_hook}'s register() takes one {_kind}, which carries its own "
                        f"name; it was given {1 + len(more)} arguments"
                    )
                name = _check(obj, _plugin)
                if name in _table:
                    other = _table[name]
                    raise PluginError(
                        f"{_kind} '{name}' is registered twice: by {other.plugin} ({other.origin}) "
                        f"and by {_plugin} ({origins[_plugin]})"
                    )
                _table[name] = Entry(name, obj, _plugin, origins[_plugin])
                infos[_plugin].registers.append(f"{_kind} {name}")

            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except PluginError:
                raise
            except (Exception, SystemExit) as exc:
                raise PluginError(f"plugin {plugin} failed in {hook_name}: {type_and_first_line(exc)}") from exc


def _check_name(name: Any, what: str, plugin: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise PluginError(
            f"plugin {plugin} registers a {what} named {name!r}; names are lowercase letters, digits, '_' and '-'"
        )
    return name


def _check_dataset(obj: Any, plugin: str) -> str:
    if not (isinstance(obj, type) and issubclass(obj, Dataset)):
        raise PluginError(f"plugin {plugin} registers {obj!r} as a dataset; expected an autoft.Dataset subclass")
    _check_options(obj, plugin)
    return _check_name(obj.name, "dataset", plugin)


def _check_strategy(obj: Any, plugin: str) -> str:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise PluginError(f"plugin {plugin} registers {obj!r} as a strategy; expected an autoft.Strategy subclass")
    _check_options(obj, plugin)
    return _check_name(obj.name, "strategy", plugin)


def _check_backend(obj: Any, plugin: str) -> str:
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise PluginError(f"plugin {plugin} registers {obj!r} as a backend; expected an autoft.Backend subclass")
    _check_options(obj, plugin)
    return _check_name(obj.name, "backend", plugin)


def _check_metric(obj: Any, plugin: str) -> str:
    if not isinstance(obj, Metric):
        raise PluginError(f"plugin {plugin} registers {obj!r} as a metric; expected an autoft.Metric")
    return _check_name(obj.name, "metric", plugin)


def _check_options(cls: type, plugin: str) -> None:
    if not dataclasses.is_dataclass(cls.Options):
        raise PluginError(f"plugin {plugin}: {cls.__name__}.Options must be a dataclass")
