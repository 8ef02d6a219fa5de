"""The LibriSpeech recipe: download, manifests, statistics, LM, units, training (one process,
several GPUs or several nodes), averaging and a WER table (see ``run.py`` and ``README.md``)."""
