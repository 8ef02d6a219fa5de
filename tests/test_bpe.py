"""SentencePiece BPE output units end to end: the tokenizer, checkpoints, greedy and beam decoding
(lexicon-free, and with a BPE lexicon and a KenLM model), forced alignment, training, streaming."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pytest
import torch

import asr
from asr.alignment import align_words
from asr.bpe import WORD_START, BPETokenizer, train_bpe
from asr.checkpoint import METADATA_FILE, load_checkpoint, load_tokenizer, save_checkpoint
from asr.cli.main import main
from asr.decoding.beam import BeamConfig, BeamDecoder
from asr.decoding.greedy import greedy_decode
from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureConfig, Normalizer
from asr.lm.build import write_lexicon
from asr.network import CTCModel, ModelConfig
from asr.text import BLANK
from asr.tokenizer import CharTokenizer, TokenizerConfig, build_tokenizer, tokenizer_from_dict
from streaming import EndpointConfig, Recognizer, RecognizerConfig
from tests.test_lm import seeded_sentences
from tests.test_streaming import feed_in_random_chunks, random_streaming_model

# 48 tokens of this text: single-piece words (THE, CAT, MAT), words of several pieces (SAT =
# ▁S AT) and words that begin with a lone ▁ (HE = ▁ HE).
TEXTS = seeded_sentences(200) + ["we don't like the dog"] * 5
VOCAB_SIZE = 48


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> BPETokenizer:
    return train_bpe(TEXTS, VOCAB_SIZE, tmp_path_factory.mktemp("bpe") / "bpe.model")


def piece_frames(tokenizer, pieces: list[str | dict[str, float]], confidence: float = 0.9) -> torch.Tensor:
    """``(T, V)`` log-probs: each entry of ``pieces`` on one frame then a blank frame. An entry
    is a piece (``confidence`` on it) or a ``{piece: probability}`` dict; the rest of a frame's
    mass is spread over the other tokens."""
    frames = [entry for piece in pieces for entry in (piece, {BLANK: confidence})]
    probs = torch.empty(len(frames), tokenizer.vocab_size)
    for t, entry in enumerate(frames):
        mass = entry if isinstance(entry, dict) else {entry: confidence}
        probs[t] = (1 - sum(mass.values())) / (tokenizer.vocab_size - len(mass))
        for piece, p in mass.items():
            probs[t, tokenizer.tokens.index(piece)] = p
    return probs.log()


def spelled(tokenizer, text: str) -> list[str]:
    return [piece for word in text.split() for piece in tokenizer.spell(word)]


# --- the tokenizer ------------------------------------------------------------------------------


def test_bpe_tokenizer_round_trips_with_the_blank_first(bpe, tmp_path):
    assert bpe.vocab_size == VOCAB_SIZE and bpe.tokens[0] == BLANK == bpe.tokens[bpe.blank_id]
    assert bpe.word_delimiter is None
    text = "HE WORE A HAT WE DON'T LIKE THE CAT"
    ids = bpe.encode(text)
    assert 0 not in ids and bpe.decode(ids) == text
    assert bpe.decode([0, *ids[:2], 0, *ids[2:]]) == text  # blanks are skipped
    assert [bpe.decode(ids[s:e]) for s, e in bpe.word_spans(ids)] == text.split()
    assert all(bpe.tokens[ids[s]].startswith(WORD_START) for s, _ in bpe.word_spans(ids))
    assert bpe.spell("THE") == ["▁THE"] and bpe.spell("SAT") == ["▁S", "AT"] and bpe.spell("HE") == ["▁", "HE"]
    # Ids that start inside a word (a stream cut mid-word) still make a word.
    at = bpe.tokens.index("AT")
    assert bpe.word_spans([at, *bpe.encode("THE")]) == [(0, 1), (1, 2)]
    (tmp_path / "copy.model").write_bytes(bpe.model)
    assert BPETokenizer.from_file(tmp_path / "copy.model") == bpe


def test_training_is_deterministic_and_the_text_is_normalised(bpe, tmp_path):
    lower = train_bpe([t.lower() + "!" for t in TEXTS], VOCAB_SIZE, tmp_path / "again.model")
    assert lower.model == bpe.model
    assert (tmp_path / "again.model").read_bytes() == bpe.model


def test_unknown_characters_and_bad_words_are_refused(bpe):
    with pytest.raises(ValueError, match=r"\['Q', 'X'\].*normalise"):
        bpe.encode("QUIXOTE")
    for word in ("", "TWO WORDS", "QUIZ"):
        with pytest.raises(ValueError):
            bpe.spell(word)


def test_unusable_models_and_sizes_are_refused(tmp_path):
    import io

    import sentencepiece

    with pytest.raises(ValueError, match="not a SentencePiece model"):
        BPETokenizer(b"not a model")
    with pytest.raises(ConfigError, match="missing.model"):
        BPETokenizer.from_file(tmp_path / "missing.model")
    with_specials = io.BytesIO()  # SentencePiece's defaults: <unk> 0, <s> 1, </s> 2
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_writer=with_specials, vocab_size=40, model_type="bpe", minloglevel=2
    )
    with pytest.raises(ValueError, match="<s>, </s>"):
        BPETokenizer(with_specials.getvalue())
    with pytest.raises(ConfigError, match="5000 tokens"):
        train_bpe(TEXTS, 5000, tmp_path / "big.model")
    with pytest.raises(ConfigError, match="no text"):
        train_bpe(["", "!!"], 40, tmp_path / "empty.model")


def test_cli_trains_a_bpe_model_on_manifests(bpe, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio": "x.wav", "text": t}) + "\n" for t in TEXTS))
    output = tmp_path / "cli.model"
    assert main(["bpe", "--manifest", str(manifest), "--vocab-size", str(VOCAB_SIZE), "--output", str(output)]) == 0
    assert output.read_bytes() == bpe.model and f"{VOCAB_SIZE} tokens" in capsys.readouterr().out
    assert main(["bpe", "--manifest", str(manifest), "--vocab-size", "5000", "--output", str(output)]) == 2


def test_tokenizer_config_and_dict_dispatch(bpe, tmp_path):
    path = tmp_path / "bpe.model"
    path.write_bytes(bpe.model)
    assert build_tokenizer(TokenizerConfig("bpe", str(path))) == bpe
    assert build_tokenizer(TokenizerConfig()) == CharTokenizer()
    assert tokenizer_from_dict(bpe.to_dict()) == bpe
    assert tokenizer_from_dict(CharTokenizer().to_dict()) == CharTokenizer()
    for bad in ({"kind": "bpe"}, {"kind": "char", "bpe_model": str(path)}, {"kind": "words"}):
        with pytest.raises(ConfigError):
            TokenizerConfig(**bad)


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def bpe_checkpoint(bpe, tmp_path):
    features = FeatureConfig()
    model = CTCModel(ModelConfig(vocab_size=bpe.vocab_size, hidden_size=16, num_layers=1))
    return save_checkpoint(tmp_path / "bpe-ckpt", model, features, Normalizer.identity(features.n_mels), bpe)


def test_bpe_checkpoint_round_trip(bpe, bpe_checkpoint):
    loaded = load_checkpoint(bpe_checkpoint)
    assert loaded.tokenizer == bpe and load_tokenizer(bpe_checkpoint) == bpe
    assert sorted(p.name for p in bpe_checkpoint.iterdir()) == ["model.json", "model.safetensors"]  # self-contained
    stored = json.loads((bpe_checkpoint / METADATA_FILE).read_text())["tokenizer"]
    assert stored["type"] == "bpe" and base64.b64decode(stored["model"]) == bpe.model


@pytest.mark.parametrize("edit", ["model", "tokens", "base64"])
def test_an_edited_bpe_model_is_refused(bpe, bpe_checkpoint, edit):
    meta_path = bpe_checkpoint / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    tokenizer = meta["tokenizer"]
    if edit == "model":  # a piece renamed inside the model: the SHA-256 no longer matches
        tokenizer["model"] = base64.b64encode(bpe.model.replace("▁CAT".encode(), "▁BAT".encode())).decode()
    elif edit == "tokens":
        tokenizer["tokens"][3] = "▁DOG"
    else:
        tokenizer["model"] = tokenizer["model"][:-3] + "*=="
    meta_path.write_text(json.dumps(meta))
    message = {"model": "SHA-256", "tokens": "tokens recorded", "base64": "base64"}[edit]
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bpe_checkpoint)


def test_character_checkpoints_are_unchanged(tiny_checkpoint):
    stored = json.loads((tiny_checkpoint / METADATA_FILE).read_text())["tokenizer"]
    assert stored == {"type": "char", "tokens": list(CharTokenizer().tokens)}
    assert load_checkpoint(tiny_checkpoint).tokenizer == CharTokenizer()


# --- greedy and beam decoding, alignment ----------------------------------------------------------


def test_greedy_decoding_makes_words_with_times_from_pieces(bpe):
    pieces = spelled(bpe, "HE SAT ON THE MAT")  # ▁ HE ▁S AT ▁O N ▁THE ▁MAT
    hypothesis = greedy_decode(piece_frames(bpe, pieces), bpe)
    assert hypothesis.text == "HE SAT ON THE MAT"
    assert [(w.word, w.start_frame, w.end_frame) for w in hypothesis.words] == [
        ("HE", 0, 2), ("SAT", 4, 6), ("ON", 8, 10), ("THE", 12, 12), ("MAT", 14, 14),
    ]  # fmt: skip
    assert all(w.confidence == pytest.approx(0.9) for w in hypothesis.words)


def test_beam_without_lm_agrees_with_greedy(bpe):
    log_probs = piece_frames(bpe, spelled(bpe, "HE WORE A HAT"))
    greedy = greedy_decode(log_probs, bpe)
    hypotheses = BeamDecoder(BeamConfig(beam_size=8, nbest=3), bpe).decode(log_probs)
    assert hypotheses[0].text == greedy.text == "HE WORE A HAT"
    assert hypotheses[0].token_ids == greedy.token_ids and hypotheses[0].token_frames == greedy.token_frames
    assert hypotheses[0].words == greedy.words
    assert len({h.text for h in hypotheses}) == 3


ARPA = """\\data\\
ngram 1=8
ngram 2=8

\\1-grams:
-2.0\t<unk>
-99\t<s>
-1.0\t</s>
-1.0\tTHE
-1.0\tCAT
-1.0\tMAT
-1.0\tSAT
-1.0\tON

\\2-grams:
-0.2\t<s> THE
-0.2\t<s> ON
-0.1\tON THE
-0.3\tTHE CAT
-0.3\tTHE MAT
-0.1\tCAT SAT
-0.1\tSAT </s>
-0.1\tMAT </s>

\\end\\
"""


@pytest.fixture
def bpe_lm(bpe, tmp_path):
    """A word LM (ARPA, read by KenLM inside flashlight) and its lexicon spelled in BPE pieces."""
    (tmp_path / "lm.arpa").write_text(ARPA)
    write_lexicon(["THE", "CAT", "MAT", "SAT", "ON"], tmp_path / "lexicon.txt", bpe)
    assert "SAT\t▁S AT\n" in (tmp_path / "lexicon.txt").read_text()
    return tmp_path / "lm.arpa"


def test_bpe_lexicon_and_language_model_choose_the_words(bpe, bpe_lm):
    decoder = BeamDecoder(BeamConfig(lm=str(bpe_lm)), bpe)
    ambiguous = {"▁CAT": 0.45, "▁MAT": 0.45}  # only the LM can tell CAT from MAT
    assert decoder.decode(piece_frames(bpe, ["▁O", "N", "▁THE", ambiguous]))[0].text == "ON THE MAT"
    assert decoder.decode(piece_frames(bpe, ["▁THE", ambiguous, "▁S", "AT"]))[0].text == "THE CAT SAT"
    # Lexicon mode spells only lexicon words: SED (▁S ED) wins on acoustics alone.
    weak = ["▁THE", "▁CAT", "▁S", {"ED": 0.6, "AT": 0.3}]
    free = BeamDecoder(BeamConfig(), bpe).decode(piece_frames(bpe, weak))[0]
    lexicon = BeamDecoder(BeamConfig(lexicon=str(bpe_lm.parent / "lexicon.txt")), bpe).decode(piece_frames(bpe, weak))
    assert (free.text, lexicon[0].text) == ("THE CAT SED", "THE CAT SAT")
    assert [w.word for w in lexicon[0].words] == ["THE", "CAT", "SAT"]


def test_a_last_piece_held_for_two_frames_stays_one_word(bpe, bpe_lm):
    """A word's last piece repeated on consecutive frames cannot be held at the lexicon's root
    (there is no silence token for BPE; see asr.decoding.beam): the search reads the repeat as blank."""
    log_probs = piece_frames(bpe, ["▁THE", "▁CAT", "▁S", "AT"], confidence=0.8)
    repeat = log_probs[3].clone()  # the blank frame after ▁CAT becomes ▁CAT again, blank close behind
    repeat[bpe.tokens.index("▁CAT")], repeat[0] = torch.tensor(0.6).log(), torch.tensor(0.35).log()
    log_probs[3] = repeat
    hypothesis = BeamDecoder(BeamConfig(lm=str(bpe_lm)), bpe).decode(log_probs)[0]
    assert hypothesis.text == "THE CAT SAT"


def test_a_character_lexicon_for_a_bpe_model_is_named(bpe, tmp_path):
    (tmp_path / "lexicon.txt").write_text("CAT\tC A T |\n")
    with pytest.raises(ConfigError, match="lexicon.txt: spells words with tokens this model does not have"):
        BeamDecoder(BeamConfig(lexicon=str(tmp_path / "lexicon.txt")), bpe)


def test_forced_alignment_with_pieces(bpe):
    log_probs = piece_frames(bpe, spelled(bpe, "HE SAT ON THE MAT"))
    words = align_words(log_probs, "HE SAT ON THE MAT", bpe)
    assert [w.word for w in words] == ["HE", "SAT", "ON", "THE", "MAT"]
    assert words[0].start_frame == 0 and words[-1].end_frame == 15
    assert all(a.end_frame == b.start_frame for a, b in zip(words, words[1:]))  # joined: no pauses
    assert all(w.confidence > 0.8 for w in words)


def test_cli_spells_a_lexicon_with_the_models_tokenizer(bpe_checkpoint, tmp_path):
    load_words = pytest.importorskip("flashlight.lib.text.dictionary").load_words
    (tmp_path / "lm.arpa").write_text(ARPA)
    lexicon = tmp_path / "lexicon.txt"
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "lm.arpa"), "--output", str(lexicon),
                 "--model", str(bpe_checkpoint)]) == 0  # fmt: skip
    assert load_words(str(lexicon))["SAT"] == [["▁S", "AT"]]
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "lm.arpa"), "--output", str(lexicon)]) == 0
    assert load_words(str(lexicon))["SAT"] == [["S", "A", "T", "|"]]  # without --model: characters


@pytest.mark.slow
def test_real_kenlm_lm_with_a_bpe_lexicon(bpe, tmp_path):
    from asr.lm import kenlm as kenlm_build
    from asr.lm.build import build_lm

    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    files = build_lm([text], tmp_path / "lm", order=3, tokenizer=bpe, binaries=kenlm_build.kenlm_binaries())
    assert json.loads(files.metadata.read_text())["lexicon"]["tokenizer"]["sha256"] == bpe.sha256
    decoder = BeamDecoder(BeamConfig(lm=str(files.lm), beam_size=20), bpe)
    ambiguous = {"▁CAT": 0.45, "▁MAT": 0.45}
    assert decoder.decode(piece_frames(bpe, spelled(bpe, "SAT ON THE") + [ambiguous]))[0].text == "SAT ON THE MAT"
    assert decoder.decode(piece_frames(bpe, ["▁THE", ambiguous, "▁S", "AT"]))[0].text == "THE CAT SAT"


# --- training -------------------------------------------------------------------------------------


def test_asr_train_with_a_bpe_tokenizer_trains_and_decodes(tmp_path):
    from asr.train.config import load_train_config
    from asr.train.loading import build_data
    from asr.train.trainer import train
    from tests.test_train import make_toy_corpus, toy_config, word_audio

    corpus = make_toy_corpus(tmp_path)
    texts = [json.loads(line)["text"] for line in (corpus / "train.jsonl").read_text().splitlines()]
    tokenizer = train_bpe(texts, 12, corpus / "bpe.model")
    config = toy_config(corpus, epochs=15, tokenizer=TokenizerConfig("bpe", str(corpus / "bpe.model")))
    with pytest.raises(ConfigError, match="set model.vocab_size = 12"):
        build_data(config, progress_bars=False)
    # The same settings from TOML, the model path relative to the config file.
    (corpus / "train.toml").write_text(
        'exp_dir = "exp"\n[data]\ntrain_manifest = "train.jsonl"\nvalid_manifest = "valid.jsonl"\n'
        'stats = "stats.json"\n[tokenizer]\nkind = "bpe"\nbpe_model = "bpe.model"\n[model]\nvocab_size = 12\n'
    )
    assert load_train_config(corpus / "train.toml").tokenizer.bpe_model == str(corpus / "bpe.model")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=12))
    history = train(config, progress_bars=False).history
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["valid_cer"] < 0.2
    model = asr.load_model(corpus / "exp" / "best")
    assert model.tokenizer == tokenizer
    for decoder in ("greedy", "beam"):
        transcript = model.transcribe(word_audio("CAB DC BAD"), decoder=decoder, word_timestamps=True)
        assert transcript.words and set(transcript.text.replace(" ", "")) <= set("ABCD")
        assert [w.word for w in transcript.words] == transcript.text.split()


# --- streaming ------------------------------------------------------------------------------------


# Added to the logits of word-start pieces: the random model then spells words of one piece and
# of several (without it, it rarely begins a word).
WORD_START_NUDGE = 0.3


@pytest.fixture
def bpe_streaming_model(tmp_path, speechlike, bpe):
    """test_streaming's random unidirectional model, with BPE output units."""
    model = random_streaming_model(tmp_path, speechlike, bpe)
    with torch.no_grad():
        model.network.head.bias[[t.startswith(WORD_START) for t in bpe.tokens]] += WORD_START_NUDGE
    checkpoint = model.checkpoint
    return asr.load_model(
        save_checkpoint(tmp_path / "uni-bpe", model.network, checkpoint.features, checkpoint.normalizer, bpe)
    )


def test_streaming_greedy_with_pieces_equals_whole_file(bpe_streaming_model, speechlike):
    recognizer = Recognizer(
        bpe_streaming_model, RecognizerConfig(endpoint=EndpointConfig(enabled=False), quantize=None)
    )
    whole = greedy_decode(bpe_streaming_model.log_probs(speechlike), bpe_streaming_model.tokenizer)
    assert len(whole.words) > 1
    for seed in range(3):
        transcript = feed_in_random_chunks(recognizer, speechlike, seed)
        assert transcript.text == whole.text
        assert [w.word for w in transcript.words] == [w.word for w in whole.words]
    stream, shown = recognizer.create_stream(), ""
    for start in range(0, len(speechlike), 1600):
        stream.accept_waveform(speechlike[start : start + 1600])
        assert stream.committed.startswith(shown)
        shown = stream.committed
    assert stream.finish().text.startswith(shown)


@pytest.mark.parametrize("lm", [False, True])
def test_streaming_beam_commits_whole_words(bpe_streaming_model, speechlike, bpe, tmp_path, lm):
    model = bpe_streaming_model
    options = {}
    if lm:  # every word the greedy path spells, in a lexicon
        words = greedy_decode(model.log_probs(speechlike), bpe).text.split()
        write_lexicon(words, tmp_path / "lexicon.txt", bpe)
        options["lexicon"] = str(tmp_path / "lexicon.txt")
    config = RecognizerConfig(
        decoder="beam", beam=BeamConfig(**options), endpoint=EndpointConfig(enabled=False), quantize=None
    )
    offline = model.transcribe(speechlike, decoder="beam", **options).text
    assert offline
    recognizer = Recognizer(model, config)
    stream, committed = recognizer.create_stream(), []
    for start in range(0, len(speechlike), 1600):
        stream.accept_waveform(speechlike[start : start + 1600])
        committed.append(stream.committed.split())
    final = stream.finish().text.split()
    assert " ".join(final) == offline
    assert committed[-1] and all(c == final[: len(c)] for c in committed)  # whole words, never taken back
    assert feed_in_random_chunks(recognizer, np.asarray(speechlike), 1).text == offline
