"""Training recipes, one folder per corpus, each with the same files: ``run.py`` (numbered,
resumable stages over :mod:`asr.train.recipe`), ``conf/`` and a ``README.md`` with its results.
Run one from the repository root: ``python -m recipes.<name>.run --stage A --stop-stage B``."""
