"""Makes this interpreter behave as a plain `pip install coinbase-engine` (no `[redis]` extra) would.

Put this directory first on PYTHONPATH of a subprocess: Python imports `sitecustomize` at start, and from then
on `import redis` (and any `redis.*`) raises ModuleNotFoundError, as it does where the package is absent. The
subprocesses it starts inherit the environment, so they are Redis-less too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

HIDDEN = "redis"


class HideRedis(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == HIDDEN or fullname.startswith(HIDDEN + "."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, HideRedis())
