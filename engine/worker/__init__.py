"""The headless worker: `engine worker --config FILE`. See `engine.worker.worker`."""

from engine.worker.execution import SignalExecutor, WorkerStats
from engine.worker.worker import Worker, engine_config

__all__ = ["SignalExecutor", "Worker", "WorkerStats", "engine_config"]
