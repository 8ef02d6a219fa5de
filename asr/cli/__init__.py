"""The ``asr`` command: ``main`` (the parser and file commands), ``common`` (what subcommands
share), ``args`` (checked flag values, help with defaults), ``errors`` (how a command ends),
``output`` (where transcripts go), ``align``, ``live`` (``asr dictate``), ``bench``, ``models``
and ``stats``."""
