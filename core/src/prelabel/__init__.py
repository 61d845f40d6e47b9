"""prelabel: machine-learning backends for Label Studio.

The public surface for backend authors is re-exported here; everything else is internal.
"""

from prelabel.backend import (
    Backend,
    BulkHints,
    Context,
    Evaluation,
    TaskPredictions,
    TrainJob,
    TrainResult,
)
from prelabel.config import Control, LabelConfig, LabelCoverage, LabelMap, ObjectTag
from prelabel.errors import (
    BackendLoadError,
    BackendNotFound,
    MediaError,
    PrelabelError,
    TaskDataError,
    UnsupportedConfig,
    UpstreamError,
)
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.results import Prediction, Region
from prelabel.settings import BackendSettings, CoreSettings

__all__ = [
    "Backend",
    "BackendLoadError",
    "BackendNotFound",
    "BackendSettings",
    "BulkHints",
    "Context",
    "Control",
    "CoreSettings",
    "Evaluation",
    "LabelConfig",
    "LabelCoverage",
    "LabelMap",
    "MediaError",
    "MediaResolver",
    "ObjectTag",
    "Prediction",
    "PrelabelError",
    "ProjectKey",
    "Region",
    "TaskDataError",
    "TaskPredictions",
    "TrainJob",
    "TrainResult",
    "UnsupportedConfig",
    "UpstreamError",
]
