"""Imports every model family so that each registers its variants."""

from . import lsnet  # noqa: F401
from . import deit  # noqa: F401
from . import swin  # noqa: F401
from . import efficientnet_lite  # noqa: F401
from . import convnext  # noqa: F401
from . import metaformer  # noqa: F401
from . import inceptionnext  # noqa: F401
from . import casvit  # noqa: F401
from . import hornet  # noqa: F401
from . import moganet  # noqa: F401
from . import focalnet  # noqa: F401
