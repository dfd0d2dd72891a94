"""The line daemon: acquisition → inspection (registration, inference, decision) → outputs.

    from edge.daemon import Daemon
    exit_code = Daemon(load_config(path)).run_forever()

Each stage is a worker thread (worker.py) with a `run()` loop over bounded queues, sharing one
stop event. Every part id handed out ends in exactly one Verdict (verdict.py), published in
part-id order as a `result` (payload.py); overload, deadline misses, camera faults and images
the engine refuses are NOK or ERROR verdicts with a reason, never silent drops.

    acquisition.py   grab, part ids, software-trigger pacing (pacing.py), heartbeats, overload
    inspection.py    the engine's judgement, ImageError / InferenceError, the deadline
    engines.py       where engines come from (folder or store), which engine judges which part
    swap.py          hot swap on SIGHUP or `cmd/engine/activate`, between two parts
    output.py        reject output (reject.py), counters, watchdog progress, deadline expiry
                     (tracker.py), results in part order (sequencer.py), publishing
    daemon.py        start-up and shutdown lists, the main loop (systemd, STATUS, metrics)
    health.py        the camera's, reject output's and MQTT link's states, watched for changes
    build.py         the default components from the configuration
    main.py          run_main(config_path) and the exit codes

The daemon imports neither torch nor (until MQTT is enabled) paho, and runs on Python 3.10.
"""

from __future__ import annotations

from edge.daemon.daemon import Daemon
from edge.daemon.payload import result_payload
from edge.daemon.reject import NoneRejectOutput, RejectOutput, create_reject_output
from edge.daemon.verdict import CameraInfo, EngineInfo, Verdict

__all__ = [
    "CameraInfo",
    "Daemon",
    "EngineInfo",
    "NoneRejectOutput",
    "RejectOutput",
    "Verdict",
    "create_reject_output",
    "result_payload",
]
