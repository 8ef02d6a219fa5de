"""Training: configuration, the loop and its steps, data, augmentation, processes, averaging.

``config`` (the TOML file's dataclasses), ``trainer`` (the loop, validation, checkpoints and
resumption), ``step`` (one optimizer step and the losses), ``state`` (what resumes a run),
``data`` (in-memory features or audio read per batch; duration-bucketed batches), ``augment``,
``distributed`` (one process or many), ``average`` and ``experiment`` (checkpoint averaging and
the experiment directory), ``overfit`` (can the model learn at all?) and ``recipe`` (the stage
runner the recipes share). Nothing in inference imports this package.
"""
