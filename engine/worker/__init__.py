"""The headless worker: `engine worker --config FILE`. See `engine.worker.worker`."""

from engine.worker.worker import Worker, WorkerStats, gate_config

__all__ = ["Worker", "WorkerStats", "gate_config"]
