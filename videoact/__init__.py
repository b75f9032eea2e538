"""videoact: video action understanding, decode -> features -> heads -> one shared annotation format."""

from videoact.annotations import AnnotationError, Tables, load

__version__ = "0.1.0.dev0"

__all__ = ["AnnotationError", "Tables", "__version__", "load"]
