"""The shared annotation format (tables, validation, storage) and the field's formats."""

from videoact.annotations.schema import SCHEMA_VERSION, TABLE_NAMES, AnnotationError, validate
from videoact.annotations.store import load, write_tables
from videoact.annotations.tables import Tables

__all__ = ["SCHEMA_VERSION", "TABLE_NAMES", "AnnotationError", "Tables", "load", "validate", "write_tables"]
