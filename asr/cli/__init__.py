"""The ``asr`` command: ``main`` (the parser and file commands), ``common`` (what subcommands
share), ``align``, ``live`` (``asr dictate``) and ``bench``."""
