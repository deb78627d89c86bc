"""autoft: find the best fine-tuned transformer classifier for your labelled text.

The public surface for plugin authors: :class:`Dataset`, :class:`Strategy`,
:class:`Metric`, :class:`Backend`, :data:`hookimpl`, and the types they use.
"""

from .backends import Backend, RunningTrial, Search
from .data import Dataset, LoadContext, NoOptions, RawDataset, Split
from .errors import AutoftError, ConfigError, DataError, ModelError, PluginError, StudyError
from .hookspecs import hookimpl
from .metrics import Metric, Objective
from .options import option
from .strategies import Phase, Strategy

__version__ = "0.1.0"

__all__ = [
    "AutoftError",
    "Backend",
    "ConfigError",
    "DataError",
    "Dataset",
    "LoadContext",
    "Metric",
    "ModelError",
    "NoOptions",
    "Objective",
    "Phase",
    "PluginError",
    "RawDataset",
    "RunningTrial",
    "Search",
    "Split",
    "Strategy",
    "StudyError",
    "hookimpl",
    "option",
]
