"""Model checkpoints as safetensors: tensors plus the architecture as JSON metadata, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from trainer.errors import TrainerError
from trainer.model import DAEConfig, DenoisingAutoencoder


def save_checkpoint(model: DenoisingAutoencoder, path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"dae_config": json.dumps(model.config.as_dict())})


def load_checkpoint(path: Path) -> DenoisingAutoencoder:
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        config = DAEConfig(**json.loads(meta["dae_config"]))
        model = DenoisingAutoencoder(config)
        model.load_state_dict(load_file(str(path)))
    except (OSError, SafetensorError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise TrainerError(f"{path}: not a PartSight checkpoint ({exc})") from exc
    return model.eval()
