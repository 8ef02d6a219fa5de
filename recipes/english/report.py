#!/usr/bin/env python3
"""Learning curves of training runs: loss and validation WER per epoch, as PNG and Markdown.

Reads the per-epoch history that training keeps in each checkpoint (``<exp>/last/model.json``)
and draws, for one run or several side by side: training and validation loss per epoch, and
validation WER pooled and per set.

Usage: python recipes/english/report.py EXP_DIR [EXP_DIR ...] --out PNG [--markdown MD] [--x step]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: draw to files only
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger("report")

CHECKPOINT_JSON = "model.json"
SET_PREFIX = "valid_wer/"
FIGURE_SIZE = (13.0, 4.2)
DPI = 110


def read_history(exp_dir: Path) -> list[dict]:
    """The per-epoch rows of the run in ``exp_dir`` (its newest checkpoint, ``last``)."""
    path = exp_dir / "last" / CHECKPOINT_JSON
    try:
        return json.loads(path.read_text())["provenance"]["history"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{path}: no training history ({exc})") from exc


def plot_runs(runs: dict[str, list[dict]], out: Path, x: str = "epoch") -> None:
    """One figure: losses, pooled validation WER, and per-set validation WER of each run, at
    each epoch's end; ``x`` is ``"epoch"`` or ``"step"`` (to compare runs whose epochs differ)."""
    fig, (losses, pooled, per_set) = plt.subplots(1, 3, figsize=FIGURE_SIZE)
    for name, history in runs.items():
        xs = [row[x] for row in history]
        (line,) = losses.plot(xs, [row["train_loss"] for row in history], "o-", label=f"{name} train")
        losses.plot(xs, [row["valid_loss"] for row in history], "s--", color=line.get_color(), label=f"{name} valid")
        pooled.plot(xs, [100 * row["valid_wer"] for row in history], "o-", label=name)
        sets = sorted({key for row in history for key in row if key.startswith(SET_PREFIX)})
        for key in sets:
            label = f"{name}: {key[len(SET_PREFIX) :]}" if len(runs) > 1 else key[len(SET_PREFIX) :]
            per_set.plot(xs, [100 * row.get(key, float("nan")) for row in history], ".-", label=label)
    losses.set(title="CTC loss per utterance", xlabel=x, ylabel="loss")
    pooled.set(title="validation WER, pooled (greedy)", xlabel=x, ylabel="WER %")
    per_set.set(title="validation WER per set (greedy)", xlabel=x, ylabel="WER %")
    for axes in (losses, pooled, per_set):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    logger.info("learning curves of %s written to %s", ", ".join(runs), out)


def history_table(history: list[dict]) -> str:
    """The run's epochs as a Markdown table (losses, pooled and per-set validation WER %)."""
    sets = sorted({key for row in history for key in row if key.startswith(SET_PREFIX)})
    header = ["epoch", "step", "train loss", "valid loss", "valid WER %", *(k[len(SET_PREFIX) :] for k in sets)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in history:
        cells = [str(row["epoch"]), str(row["step"]), f"{row['train_loss']:.2f}", f"{row['valid_loss']:.2f}"]
        cells += [f"{100 * row['valid_wer']:.2f}", *(f"{100 * row.get(k, float('nan')):.2f}" for k in sets)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chained(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """``runs`` in order, each one's ``step`` and ``epoch`` counted on from the end of the one before."""
    out, step, epoch = {}, 0, 0
    for name, rows in runs.items():
        out[name] = [dict(row, step=row["step"] + step, epoch=row["epoch"] + epoch) for row in rows]
        if rows:
            step, epoch = out[name][-1]["step"], out[name][-1]["epoch"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dirs", nargs="+", type=Path, help="training runs (their exp_dir)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--markdown", type=Path, help="also write each run's epochs as Markdown tables here")
    parser.add_argument("--x", choices=("epoch", "step"), default="epoch", help="the horizontal axis")
    parser.add_argument(
        "--chain", action="store_true",
        help="the runs continue one another (each warm-started from the one before): count each "
        "run's steps and epochs on from the end of the one before",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runs = {exp.name: read_history(exp) for exp in args.exp_dirs}
    if args.chain:
        runs = chained(runs)
    plot_runs(runs, args.out, args.x)
    if args.markdown:
        text = "".join(f"### {name}\n\n{history_table(rows)}\n" for name, rows in runs.items())
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
