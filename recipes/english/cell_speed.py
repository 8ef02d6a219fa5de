"""GRU against LSTM speed: two checkpoints' networks on the same batch shapes, in one run.

Times, on one thread, a training pass (forward with the phone head, CTC-shaped loss, backward)
and an inference pass (forward, no gradient) of each model on the same random ``(N, T, F)``
features, alternating between the models round by round so that a machine shared with other
work slows both alike; the fastest round of each counts. Prints one JSON object: seconds per pass
for each model and the ratios ``gru / lstm``.

    python recipes/english/cell_speed.py exp/bilstm_real/last exp/bigru_real/last
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable

import torch

from asr.checkpoint import load_checkpoint
from asr.network import CTCModel

BATCH = 6  # utterances per batch: about the trainer's 6,000-frame cap at 10 s each
FRAMES = 1000  # feature frames per utterance (10 s)
ROUNDS = 5

logger = logging.getLogger(__name__)


def _training_pass(model: CTCModel, features: torch.Tensor, lengths: torch.Tensor) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    log_probs, _, _, phone_log_probs = model(features, lengths, with_aux=True)
    loss = log_probs.mean() + phone_log_probs.mean()  # what backward costs does not depend on the loss
    loss.backward()


def _inference_pass(model: CTCModel, features: torch.Tensor, lengths: torch.Tensor) -> None:
    model.eval()
    with torch.inference_mode():
        model(features, lengths)


def _fastest(passes: dict[str, Callable[[], None]]) -> dict[str, float]:
    """The fastest of :data:`ROUNDS` timed calls of each pass, the passes taken in turn each round."""
    best = {name: float("inf") for name in passes}
    for _ in range(ROUNDS):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lstm", help="checkpoint directory of the LSTM model")
    parser.add_argument("gru", help="checkpoint directory of the GRU model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {name: load_checkpoint(path).model for name, path in (("lstm", args.lstm), ("gru", args.gru))}
    n_mels = models["lstm"].config.n_mels
    features, lengths = torch.randn(BATCH, FRAMES, n_mels), torch.full((BATCH,), FRAMES)
    for model in models.values():  # one untimed pass each
        _training_pass(model, features, lengths)
    train = _fastest({name: lambda m=m: _training_pass(m, features, lengths) for name, m in models.items()})
    infer = _fastest({name: lambda m=m: _inference_pass(m, features, lengths) for name, m in models.items()})
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    print(
        json.dumps(
            {
                "batch": [BATCH, FRAMES, n_mels],
                "parameters": params,
                "train_seconds": train,
                "inference_seconds": infer,
                "train_ratio_gru_over_lstm": round(train["gru"] / train["lstm"], 3),
                "inference_ratio_gru_over_lstm": round(infer["gru"] / infer["lstm"], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
