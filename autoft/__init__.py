"""autoft: find the best fine-tuned transformer classifier for your labelled text.

The public surface for plugin authors: :class:`Dataset`, :class:`Strategy`,
:class:`Metric`, :data:`hookimpl`, and the types they use.
"""

from .data import Dataset, LoadContext, NoOptions, RawDataset, Split
from .errors import AutoftError, ConfigError, DataError, ModelError, PluginError, StudyError
from .hookspecs import hookimpl
from .metrics import Metric
from .options import option
from .strategies import Phase, Strategy

__version__ = "0.1.0"

__all__ = [
    "AutoftError",
    "ConfigError",
    "DataError",
    "Dataset",
    "LoadContext",
    "Metric",
    "ModelError",
    "NoOptions",
    "Phase",
    "PluginError",
    "RawDataset",
    "Split",
    "Strategy",
    "StudyError",
    "hookimpl",
    "option",
]
