"""``asr bench``: every speed figure next to the reference measured in the same run.

``suite`` runs the sections; ``speed`` (file transcription), ``compute`` (the forward pass against
the bare LSTM), ``training`` (the training step and Gloo processes), ``streaming`` and ``latency``
(live recognition), ``side_by_side`` and ``peers`` (the bundled models beside pocketsphinx);
``report`` holds the figures. Benchmarks may import :mod:`streaming`; the library may not.
"""
