import math

import pytest
import torch

from asr.decoding.greedy import greedy_decode, greedy_decode_batch
from asr.tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()


def frames_for(symbols: str, confidence: float = 0.9) -> torch.Tensor:
    """``(T, V)`` log-probs whose best path is ``symbols`` ('_' = blank, ' ' = word delimiter)."""
    index = {"_": 0, " ": 1}
    probs = torch.full((len(symbols), TOKENIZER.vocab_size), (1 - confidence) / (TOKENIZER.vocab_size - 1))
    for t, s in enumerate(symbols):
        probs[t, index.get(s, TOKENIZER.tokens.index(s) if s in TOKENIZER.tokens else 0)] = confidence
    return probs.log()


def test_repeats_merge_and_blanks_split():
    hyp = greedy_decode(frames_for("__HH_E_LL_LLO__ WW_O_R_LD_"), TOKENIZER)
    assert hyp.text == "HELLO WORLD"
    assert [w.word for w in hyp.words] == ["HELLO", "WORLD"]
    assert hyp.words[0].start_frame == 2 and hyp.words[0].end_frame == 12
    assert hyp.words[1].start_frame == 16
    assert hyp.words[0].confidence == pytest.approx(0.9)
    assert hyp.score == pytest.approx(26 * math.log(0.9), rel=1e-5)


def test_all_blank_gives_empty_text():
    hyp = greedy_decode(frames_for("_____"), TOKENIZER)
    assert hyp.text == "" and hyp.words == ()


def test_leading_and_doubled_delimiters_give_single_spaces():
    assert greedy_decode(frames_for(" _A_ _ _B "), TOKENIZER).text == "A B"


def test_batch_respects_lengths():
    a, b = frames_for("_A_B_"), frames_for("_C_AAAA")
    batch = torch.stack([torch.cat([a, frames_for("__")]), b])
    assert [h.text for h in greedy_decode_batch(batch, torch.tensor([5, 7]), TOKENIZER)] == ["AB", "CA"]


# --- the registry and the one interface ----------------------------------------------------


def test_an_unknown_decoder_is_refused_naming_the_choices():
    from asr.api import TranscribeOptions
    from asr.decoding.registry import DECODERS, decoder_entry
    from asr.errors import ConfigError
    from streaming import RecognizerConfig

    choices = ", ".join(DECODERS)
    assert choices == "greedy, beam"
    for make in (decoder_entry, lambda name: TranscribeOptions(decoder=name), lambda n: RecognizerConfig(decoder=n)):
        with pytest.raises(ConfigError, match=f"unknown decoder 'viterbi'; choose from {choices}"):
            make("viterbi")


def test_the_command_line_offers_the_registered_decoders():
    from asr.cli.main import build_parser
    from asr.decoding.registry import DECODERS, DEFAULT_DECODER

    parser = build_parser()
    for command in ("transcribe", "evaluate", "dictate"):
        sub = parser._subparsers._group_actions[0].choices[command]
        decoder = next(a for a in sub._actions if a.dest == "decoder")
        assert tuple(decoder.choices) == tuple(DECODERS)
        assert decoder.default == DEFAULT_DECODER


def noisy_frames(symbols: str, seed: int) -> torch.Tensor:
    """:func:`frames_for` at a low confidence, with seeded noise: hypotheses compete in the beam."""
    generator = torch.Generator().manual_seed(seed)
    logits = frames_for(symbols, confidence=0.5) + 0.5 * torch.randn(
        len(symbols), TOKENIZER.vocab_size, generator=generator
    )
    return logits.log_softmax(dim=-1)


def step_in_chunks(decoder, log_probs: torch.Tensor, seed: int):
    """Reset ``decoder``, step it through ``log_probs`` in random chunks (empty ones too), and
    finish; the committed text must only grow on the way (greedy's last word letter by letter)."""
    rng = torch.Generator().manual_seed(seed)
    decoder.reset()
    start, committed = 0, ""
    while start < log_probs.shape[0]:
        size = int(torch.randint(0, 5, (1,), generator=rng))
        decoder.step(log_probs[start : start + size])
        assert " ".join(decoder.committed).startswith(committed)
        committed = " ".join(decoder.committed)
        start += size
    return decoder.finish()


SENTENCES = ("__HH_E_LL_LLO__ WW_O_R_LD_", "_A_ _CAT_ _SAT__ ON_ THE_ _MAT__")


@pytest.mark.parametrize("seed", range(3))
def test_every_decoder_gives_the_same_text_offline_and_stepped(seed):
    from asr.decoding.base import Decoder
    from asr.decoding.registry import DECODERS, build_decoder

    # Noisy frames make the beam's hypotheses compete; clean ones let it commit words early.
    for log_probs in [*(noisy_frames(s, seed) for s in SENTENCES), frames_for(SENTENCES[1])]:
        for name in DECODERS:
            decoder = build_decoder(name, TOKENIZER)
            assert isinstance(decoder, Decoder)
            offline = decoder.decode(log_probs)
            stepped = step_in_chunks(decoder, log_probs, seed)
            fresh = build_decoder(name, TOKENIZER).decode(log_probs)
            assert offline[0].text, name
            assert stepped[0].text == offline[0].text == fresh[0].text, name
            assert stepped[0].words == offline[0].words, name


def test_beam_commits_the_words_its_whole_beam_agrees_on():
    from asr.decoding.registry import build_decoder

    log_probs = frames_for(SENTENCES[1])
    decoder = build_decoder("beam", TOKENIZER)
    decoder.step(log_probs[:22])
    # flashlight's beam mid-utterance is not quite deterministic: how far it agrees varies.
    committed = decoder.committed
    assert committed and committed == ("A", "CAT", "SAT", "ON")[: len(committed)]
    decoder.step(log_probs[22:])
    assert decoder.finish()[0].text == "A CAT SAT ON THE MAT"
    assert decoder.committed == () and decoder.tentative == ()  # the next segment is open


def test_greedy_through_the_registry_is_greedy_decode():
    from asr.decoding.registry import build_decoder

    log_probs = frames_for("__HH_E_LL_LLO__ WW_O_R_LD_")
    assert build_decoder("greedy", TOKENIZER).decode(log_probs) == [greedy_decode(log_probs, TOKENIZER)]


def test_finish_opens_the_next_segment_and_reset_forgets_the_last_frame():
    """A repeat across a segment cut stays collapsed (as in the whole recording); a new
    utterance after reset starts afresh."""
    from asr.decoding.greedy import GreedyDecoder

    decoder = GreedyDecoder(TOKENIZER)
    decoder.step(frames_for("_AB"))
    assert decoder.finish()[0].text == "AB"
    decoder.step(frames_for("BC"))
    first = decoder.finish()[0]
    assert first.text == "C" and first.token_frames == (1,)  # frames count from the segment's start
    decoder.step(frames_for("C"))
    decoder.reset()
    decoder.step(frames_for("C"))
    assert decoder.finish()[0].text == "C"
