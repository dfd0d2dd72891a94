"""Opening an engine the way this station runs it: on the configured inference backend and
registration device, with the configured threshold and heatmap-classifier overrides
(pass_probability, ood_margin), golden samples checked.

Used by the daemon (at start and for every hot swap) and by `partsight engine install`, which
checks an engine on this station's own backend before it may enter the store.
"""

from __future__ import annotations

from pathlib import Path

from edge.config import Config
from edge.inspector import Inspector


def open_station_engine(bundle_dir: Path, config: Config) -> Inspector:
    """Load the bundle folder `bundle_dir` (every file's hash checked) and re-score its golden
    samples: an engine that disagrees with itself on this machine never judges a part.
    Raises BundleError (or InferenceError from the backend); BundleError too when the
    configuration overrides pass_probability or ood_margin and the engine has no classifier."""
    inspector = Inspector.open(
        bundle_dir,
        backend=config.engine.backend,
        threshold=config.engine.threshold,
        registration_device=config.registration.device,
        min_confidence=config.registration.min_confidence,
        pass_probability=config.engine.pass_probability,
        ood_margin=config.engine.ood_margin,
    )
    inspector.check_golden()
    return inspector
