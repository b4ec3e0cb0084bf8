"""ovlabel.engine: framework-free logic and model code (never imports apache_beam)."""
from __future__ import annotations

__version__ = "0.1.0"
