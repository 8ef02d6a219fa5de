"""Dynamic int8 quantization of a loaded network, for faster inference on CPUs.

The weights of every LSTM (or GRU) and linear layer are stored as int8 with one scale per layer, and
activations are quantized on the fly at each matrix product (``torch.ao.quantization.
quantize_dynamic``); the front end's convolutions, if any, stay in float32. Nothing is written
to disk: quantization is a load option (``asr.load_model(..., quantize="int8")``,
``--quantize int8``) applied to the float checkpoint in well under a second.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

from asr.errors import ConfigError

if TYPE_CHECKING:  # imported when quantizing: the command line reads QUANTIZATIONS for its help
    import torch

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)


def check_quantization(quantize: str | None) -> None:
    """Raises ConfigError unless ``quantize`` is None or one of :data:`QUANTIZATIONS`."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")


def quantize_network(network: torch.nn.Module, quantize: str) -> torch.nn.Module:
    """An inference-only copy of ``network`` with int8 LSTM and linear weights; its forward
    takes and returns the same shapes as ``network``'s."""
    import torch

    check_quantization(quantize)
    with warnings.catch_warnings():
        # PyTorch 2.10+ points users of torch.ao's eager quantization at torchao; the API works
        # and is what the CPU kernels for quantized LSTMs (fbgemm) are reached through.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torchao.*")
        quantized = torch.ao.quantization.quantize_dynamic(
            network.eval(), {torch.nn.LSTM, torch.nn.GRU, torch.nn.Linear}, dtype=torch.qint8
        )
    logger.info("quantized the network's recurrent and linear weights to int8 (dynamic quantization)")
    return quantized.eval()
