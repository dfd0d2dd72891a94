"""Opening an engine the way this station runs it: on the configured inference backend and
registration device, with the configured threshold and heatmap-classifier overrides
(pass_probability, ood_margin), golden samples checked.

Used by the daemon (at start and for every hot swap) and by `partsight engine install`, which
checks an engine on this station's own backend before it may enter the store.
"""

from __future__ import annotations

from pathlib import Path

from edge.bundle import Bundle
from edge.config import Config
from edge.config.camera import engine_fit
from edge.errors import EngineFitError
from edge.inspector import Inspector


def open_station_engine(bundle_dir: Path | Bundle, config: Config) -> Inspector:
    """Load the bundle folder `bundle_dir` (every file's hash checked; or take the Bundle
    already loaded from its signed manifest), check that this station's camera gives frames
    it takes, and re-score its golden samples: an engine that disagrees with itself on this
    machine never judges a part. Raises BundleError (or
    InferenceError from the backend), EngineFitError when the camera's pixel format or ROI
    does not fit the engine (a colour format on a mono engine would make every part NOK
    "image"); BundleError too when the configuration overrides pass_probability or ood_margin
    and the engine has no heatmap classifier. Each is a PartSightError: a hot swap keeps the
    running engine and says why, `engine install` refuses in one line."""
    inspector = Inspector.open(
        bundle_dir,
        backend=config.engine.backend,
        threshold=config.engine.threshold,
        registration_device=config.registration.device,
        min_confidence=config.registration.min_confidence,
        pass_probability=config.engine.pass_probability,
        ood_margin=config.engine.ood_margin,
    )
    problems = engine_fit(config.camera, inspector.bundle.manifest.input)
    if problems:
        raise EngineFitError(f"camera.{problems[0]}")
    inspector.check_golden()
    return inspector
