"""The bundled models' recipe: every trainable English set of ``../shared/data`` plus synthetic
speech (see ``run.py`` and ``README.md``)."""
