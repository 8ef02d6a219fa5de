"""Phones decoded through a word lexicon, against characters, on the same model and utterances.

A model trained with the phone head (``model.aux_phone_layer``) gives two sets of
log-probabilities for every utterance: characters at its top and CMU-dictionary phones at the
phone layer. This script beam-searches both with the same word LM, beam and weights: the
characters through the model's own character lexicon, the phones through a lexicon spelling
every dictionary word of the LM's vocabulary in phones (``WORD P1 P2 ... |``; torchaudio's
lexicon decoder takes any token spelling). A word the dictionary lacks cannot be recognised by
the phone decoder; the script reports how many of the references' words that costs.

    cd recipes/english
    python phone_lexicon.py exp/bilstm_long_real/best data/valid.jsonl data/lm data/cmudict.dict \
        --lm-weight 1.0 --word-score -1.0 --beam-size 64
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import torch
from torchaudio.models.decoder import ctc_decoder

from asr.api import load_model
from asr.audio import load_audio
from asr.manifest import read_manifest
from asr.metrics import error_rates
from asr.phones import BLANK, PHONE_TOKENS, WORD_DELIMITER, load_cmudict
from asr.text import normalize_text

logger = logging.getLogger(__name__)


def write_phone_lexicon(vocabulary: list[str], cmudict: dict[str, tuple[str, ...]], path: Path) -> int:
    """``WORD P1 P2 ... |`` for each word of ``vocabulary`` the dictionary has; returns the count."""
    lines = [f"{word} {' '.join(cmudict[word])} {WORD_DELIMITER}" for word in vocabulary if word in cmudict]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def both_log_probs(model, waveform) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T', V)`` character and ``(T', P)`` phone log-probabilities of one ``(T,)`` waveform."""
    features = model.extractor(waveform).unsqueeze(0)  # (1, T, F)
    lengths = torch.tensor([features.shape[1]])
    with torch.inference_mode():
        chars, out_lengths, _, phones = model.network(features, lengths, with_aux=True)
    frames = int(out_lengths[0])
    return chars[0, :frames], phones[0, :frames]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="checkpoint directory (with a phone head)")
    parser.add_argument("manifest", help="utterances to score (JSON Lines)")
    parser.add_argument("lm_dir", help="a directory from asr lm build: lm.bin, lexicon.txt")
    parser.add_argument("cmudict", help="the CMU Pronouncing Dictionary (cmudict.dict)")
    parser.add_argument("--lm-weight", type=float, default=1.0)
    parser.add_argument("--word-score", type=float, default=-1.0)
    parser.add_argument("--beam-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    lm_dir = Path(args.lm_dir)
    vocabulary = [line.split(maxsplit=1)[0] for line in (lm_dir / "lexicon.txt").read_text().splitlines() if line]
    cmudict = load_cmudict(args.cmudict)
    options = dict(
        lm=str(lm_dir / "lm.bin"), beam_size=args.beam_size, lm_weight=args.lm_weight, word_score=args.word_score
    )
    with tempfile.TemporaryDirectory() as tmp:
        phone_lexicon = Path(tmp) / "phones.txt"
        covered = write_phone_lexicon(vocabulary, cmudict, phone_lexicon)
        decoders = {
            "characters": ctc_decoder(
                lexicon=str(lm_dir / "lexicon.txt"), tokens=list(model.tokenizer.tokens), blank_token=model.tokenizer.tokens[0],
                sil_token=model.tokenizer.word_delimiter, nbest=1, **options,
            ),
            "phones": ctc_decoder(
                lexicon=str(phone_lexicon), tokens=list(PHONE_TOKENS), blank_token=BLANK, sil_token=WORD_DELIMITER,
                nbest=1, **options,
            ),
        }  # fmt: skip
        refs, hyps = [], {name: [] for name in decoders}
        for utt in read_manifest(args.manifest):
            waveform = load_audio(utt.audio, model.sample_rate, model.min_samples)
            emissions = dict(zip(("characters", "phones"), both_log_probs(model, waveform)))
            refs.append(normalize_text(utt.text))
            for name, decoder in decoders.items():
                best = decoder(emissions[name].unsqueeze(0).contiguous())[0][0]
                hyps[name].append(" ".join(best.words))
    ref_words = [w for ref in refs for w in ref.split()]
    missing = sum(1 for w in ref_words if w not in cmudict)
    report = {
        "model": args.model,
        "manifest": args.manifest,
        "utterances": len(refs),
        "decoder": options | {"lm": options["lm"]},
        "lexicon_words": {"characters": len(vocabulary), "phones": covered},
        "reference_words_not_in_cmudict": round(missing / max(1, len(ref_words)), 4),
        "wer": {name: round(error_rates(refs, h).wer, 4) for name, h in hyps.items()},
        "cer": {name: round(error_rates(refs, h).cer, 4) for name, h in hyps.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
