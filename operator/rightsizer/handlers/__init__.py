"""kopf handlers: the only package that imports kopf (`kopf run -m rightsizer.handlers`)."""

from rightsizer.handlers import policies

__all__ = ["policies"]
