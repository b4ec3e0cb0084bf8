"""ovlabel.pipelines: Beam wiring, CLI and options. Models are known only through ModelHandlers."""
from __future__ import annotations
