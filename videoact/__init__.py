"""videoact: video action understanding, decode -> features -> heads -> one shared annotation format."""

from videoact._version import __version__
from videoact.annotations import AnnotationError, Tables, load

__all__ = ["AnnotationError", "Tables", "__version__", "load"]
