"""Every hook an autoft plugin can implement.

``register_*`` hooks hand the plugin a ``register`` callback; the host owns the
registries, so it alone checks names and reports clashes. The remaining hooks are
events a plugin observes (loggers, exporters, notifiers). Hooks grow by adding
arguments, never by renaming; an implementation may take fewer arguments.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("autoft")
hookimpl = pluggy.HookimplMarker("autoft")


@hookspec
def register_datasets(register):
    """Register dataset plugins: call ``register(cls)`` with each :class:`autoft.Dataset` subclass."""


@hookspec
def register_strategies(register):
    """Register fine-tuning strategies: call ``register(cls)`` with each :class:`autoft.Strategy` subclass."""


@hookspec
def register_metrics(register):
    """Register metrics: call ``register(metric)`` with each :class:`autoft.Metric`."""


@hookspec
def register_backends(register):
    """Register search backends: call ``register(cls)`` with each :class:`autoft.Backend` subclass."""


@hookspec
def trial_finished(study_name, record, history, config):
    """A trial ended (complete, pruned or failed); ``record`` is its leaderboard row as a dict.

    ``history`` is the trial's evaluations in order, each a dict of ``index``, ``step`` (the
    optimizer step), ``epoch``, ``train_loss`` and the validation metrics (empty when the trial
    failed before its first); ``config`` is the study's :class:`autoft.config.StudyConfig`.
    """


@hookspec
def study_finished(study_name, run_dir, best, config):
    """A study ended; ``best`` is the best trial's validation and test scores (``best/metrics.json``), or None.

    ``config`` is the study's :class:`autoft.config.StudyConfig`.
    """
