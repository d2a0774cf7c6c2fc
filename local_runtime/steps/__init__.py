"""Step handlers, one per SageMaker step type (see base.StepHandler). HANDLERS maps a definition's step
"Type" to its handler; Condition and Fail steps are control flow the executor evaluates itself."""
from __future__ import annotations

from .processing import ProcessingHandler
from .quality import QualityCheckHandler
from .registry import CreateModelHandler, RegisterModelHandler
from .training import TrainingHandler
from .transform import TransformHandler
from .tuning import TuningHandler


def default_handlers() -> dict:
    handlers = {}
    for handler in (ProcessingHandler(), TrainingHandler(), TuningHandler(), TransformHandler(),
                    RegisterModelHandler(), CreateModelHandler(), QualityCheckHandler()):
        for step_type in handler.step_types:
            handlers[step_type] = handler
    return handlers


HANDLERS = default_handlers()
