"""The profile stage: latency, memory and energy of one model file on its runtime.

``edgevis.profile`` is both this package and the function ``edgevis.profile(path, ...)``
(:func:`edgevis.profile.api.profile`): calling the module calls the function, so the
public API keeps its name even once the package has been imported.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import profile

        return profile(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
