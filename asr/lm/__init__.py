"""Word language models for beam search: text corpora, KenLM, lexicons, a model's own LM.

``corpus`` (plain text into normalised sentences), ``kenlm`` (finding or building KenLM's
binaries), ``build`` (estimating an n-gram LM and writing its lexicon for a tokenizer) and
``bundled`` (the LM a model directory carries, found for beam search).
"""
