"""Running work in the background without losing it: the task registry and the step timer."""

from .registry import CloseReport, TaskRegistry
from .steptimer import StepTimer
from .stopping import cancel_and_wait

__all__ = ["CloseReport", "StepTimer", "TaskRegistry", "cancel_and_wait"]
