"""Synthetic quick-start data (``tools/make_quickstart_data.py`` is its command line).

:mod:`internimage.datasets.quickstart` also exposes the scene renderers.
"""

from .quickstart import QUICKSTART_CLASSES, QuickstartSpec, make_quickstart_data

__all__ = ['QUICKSTART_CLASSES', 'QuickstartSpec', 'make_quickstart_data']
