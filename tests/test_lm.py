"""Language-model building: text preparation, lexicon, build_lm, and a real LM used by the decoder."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys

import pytest

from asr.cli.main import EXIT_ERROR, EXIT_OK, main
from asr.errors import ConfigError
from asr.lm import kenlm as kenlm_build
from asr.lm.build import LMError, build_lm, read_ngram_counts, write_lexicon
from asr.lm.corpus import prepare_corpus, split_sentences, strip_gutenberg, text_sentences
from asr.lm.kenlm import KenLMBinaries
from asr.text import BLANK, LETTERS, WORD_DELIMITER, normalize_text
from asr.tokenizer import CharTokenizer

GUTENBERG_BOOK = """\ufeffThe Project Gutenberg EBook of A Test, by Nobody

This eBook is for the use of anyone anywhere at no cost.

*** START OF THIS PROJECT GUTENBERG EBOOK A TEST ***

CHAPTER I.

Mr. Brown met the 2nd cat. It was
late! "Was it?" asked G. K. Smith.

End of the Project Gutenberg EBook of A Test, by Nobody

*** END OF THIS PROJECT GUTENBERG EBOOK A TEST ***

Section 1. General Terms of Use and Redistributing Project Gutenberg-tm
"""

OLD_GUTENBERG_BOOK = """**The Project Gutenberg Etext of Old Things**
Please take a look at the important information in this header.
***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

Old things are
good.  New things too.

End of The Project Gutenberg Etext of Old Things
"""


# --- text preparation ---------------------------------------------------------------------------


def test_strip_gutenberg_keeps_only_the_book():
    body = strip_gutenberg(GUTENBERG_BOOK)
    assert body.strip().startswith("CHAPTER I.")
    assert body.strip().endswith("asked G. K. Smith.")
    assert "eBook" not in body and "Section 1" not in body


def test_strip_gutenberg_old_small_print_header():
    body = strip_gutenberg(OLD_GUTENBERG_BOOK)
    assert body.split() == "Old things are good. New things too.".split()


def test_text_without_markers_is_unchanged():
    text = "just a line\nand another\n"
    assert strip_gutenberg(text) == text


def test_split_sentences_keeps_abbreviations_and_initials():
    text = '"Well," said Mr. Darcy. G. K. Chesterton wrote it! Was it? In the U.S. Army... Yes.'
    assert split_sentences(text) == [
        '"Well," said Mr. Darcy.',
        "G. K. Chesterton wrote it!",
        "Was it?",
        "In the U.S. Army...",
        "Yes.",
    ]


def test_gutenberg_book_is_read_as_prose():
    assert text_sentences(GUTENBERG_BOOK) == [
        "CHAPTER I",
        "MR BROWN MET THE SECOND CAT",
        "IT WAS LATE",
        "WAS IT",
        "ASKED G K SMITH",
    ]


def test_plain_text_is_read_as_lines_normalised_like_transcripts():
    lines = ["He paid $3.50 for 2 apples", "", "  ", "Don't stop. Go on", "--"]
    expected = [normalize_text(lines[0]), "DON'T STOP", "GO ON"]
    assert text_sentences("\r\n".join(lines)) == expected
    assert text_sentences("\n".join(lines), layout="prose") == [normalize_text(lines[0]), "DON'T STOP", "GO ON"]
    assert text_sentences("one\ntwo", layout="prose") == ["ONE TWO"]


def test_prepare_corpus_counts_and_hashes(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("the cat sat\nthe dog sat down\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_bytes(b"caf\xc3\xa9 au lait\n")
    corpus = prepare_corpus([a, b], tmp_path / "corpus.txt")
    assert (tmp_path / "corpus.txt").read_text() == "THE CAT SAT\nTHE DOG SAT DOWN\nCAFE AU LAIT\n"
    assert (corpus.sentences, corpus.words) == (3, 10)
    assert corpus.vocabulary == {"THE", "CAT", "SAT", "DOG", "DOWN", "CAFE", "AU", "LAIT"}
    assert [s.name for s in corpus.sources] == ["a.txt", "b.txt"]
    assert corpus.sources[1].sha256 == hashlib.sha256(b.read_bytes()).hexdigest()


def test_line_texts_are_streamed_plain_or_gzipped(tmp_path):
    """The LibriSpeech LM text (4 GB, one sentence per line, gzipped) is read line by line."""
    text = b"\xef\xbb\xbfthe cat sat. the dog sat down\n\nHE PAID $3\n"
    plain = tmp_path / "lm-norm.txt"
    plain.write_bytes(text)
    packed = tmp_path / "lm-norm.txt.gz"
    packed.write_bytes(gzip.compress(text))
    whole = prepare_corpus([plain], tmp_path / "auto.txt")
    for path in (plain, packed):
        corpus = prepare_corpus([path], tmp_path / "lines.txt", layout="lines")
        assert (tmp_path / "lines.txt").read_text() == (tmp_path / "auto.txt").read_text()
        assert (corpus.sentences, corpus.words, corpus.vocabulary) == (whole.sentences, whole.words, whole.vocabulary)
        assert corpus.sources[0].sha256 == hashlib.sha256(text).hexdigest()
        assert corpus.sources[0].bytes == len(text)


@pytest.mark.parametrize("layout", ["auto", "lines"])
@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), (b"", "is empty"), (b"... -- !!\n\n", "holds no words")],
)
def test_prepare_corpus_names_the_bad_file(tmp_path, content, message, layout):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LMError, match=message) as info:
        prepare_corpus([path], tmp_path / "corpus.txt", layout=layout)
    assert str(path) in str(info.value)


# --- lexicon ------------------------------------------------------------------------------------


def test_lexicon_spells_words_with_model_tokens(tmp_path):
    path = tmp_path / "lexicon.txt"
    assert write_lexicon(["HELLO", "DON'T", "A", "HELLO"], path, CharTokenizer()) == (3, 0)
    assert path.read_text() == "A\tA |\nDON'T\tD O N ' T |\nHELLO\tH E L L O |\n"


def test_lexicon_skips_words_the_tokenizer_cannot_spell(tmp_path):
    no_apostrophe = CharTokenizer(tokens=(BLANK, WORD_DELIMITER) + LETTERS)
    path = tmp_path / "lexicon.txt"
    assert write_lexicon(["DON'T", "GO"], path, no_apostrophe) == (1, 1)
    assert path.read_text() == "GO\tG O |\n"


def test_lexicon_is_read_by_the_decoder_library(tmp_path):
    load_words = pytest.importorskip("flashlight.lib.text.dictionary").load_words
    path = tmp_path / "lexicon.txt"
    write_lexicon(["CAT", "IT'S"], path, CharTokenizer())
    assert load_words(str(path))["IT'S"] == [["I", "T", "'", "S", "|"]]


# --- build_lm with stand-in KenLM programs ----------------------------------------------------

FAKE_LMPLZ = """#!{python}
import sys
args = sys.argv[1:]
if "FAIL" in open(args[args.index("--text") + 1]).read():
    sys.stderr.write("progress line\\n" * 50 + "ERROR: bad corpus\\n")
    sys.exit(3)
with open(args[args.index("--arpa") + 1], "w") as out:
    out.write("\\\\data\\\\\\nngram 1=5\\nngram 2=4\\n\\n\\\\1-grams:\\n-1.0\\t<s>\\n\\\\end\\\\\\n")
"""
FAKE_BUILD_BINARY = """#!{python}
import shutil, sys
shutil.copyfile(sys.argv[2], sys.argv[3])
"""


@pytest.fixture
def fake_kenlm(tmp_path) -> KenLMBinaries:
    """Scripts with lmplz's and build_binary's command lines that write a tiny ARPA file."""
    paths = []
    for name, script in (("lmplz", FAKE_LMPLZ), ("build_binary", FAKE_BUILD_BINARY)):
        path = tmp_path / "fakebin" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(script.format(python=sys.executable))
        path.chmod(0o755)
        paths.append(path)
    return KenLMBinaries(lmplz=paths[0], build_binary=paths[1], version="fake")


def test_build_lm_writes_model_lexicon_and_provenance(tmp_path, fake_kenlm):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\nthe cat ran\n")
    out = tmp_path / "lm"
    out.mkdir()
    (out / "lm.arpa").write_text("stale")
    files = build_lm([text], out, order=3, prune=[0, 1], binaries=fake_kenlm)
    assert files.lm == out / "lm.bin" and files.lm.is_file()
    assert files.arpa is None and not (out / "lm.arpa").exists()
    assert files.lexicon.read_text() == "CAT\tC A T |\nRAN\tR A N |\nSAT\tS A T |\nTHE\tT H E |\n"
    meta = json.loads(files.metadata.read_text())
    assert meta["order"] == 3 and meta["prune"] == [0, 1]
    assert (meta["sentences"], meta["words"], meta["vocabulary"]) == (2, 6, 4)
    assert meta["ngram_counts"] == [5, 4]
    assert meta["sources"][0]["name"] == "text.txt"
    assert meta["sources"][0]["sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()
    assert meta["tool"]["version"] == "fake" and "--discount_fallback" in meta["tool"]["lmplz_options"]


def test_build_lm_without_binary_keeps_the_arpa(tmp_path, fake_kenlm):
    text = tmp_path / "text.txt"
    text.write_text("a b c\n")
    files = build_lm([text], tmp_path / "lm", binary=False, binaries=fake_kenlm)
    assert files.lm == files.arpa == tmp_path / "lm" / "lm.arpa"
    assert read_ngram_counts(files.lm) == [5, 4]
    assert not (tmp_path / "lm" / "lm.bin").exists()


def test_lmplz_failure_reports_its_stderr_tail(tmp_path, fake_kenlm):
    text = tmp_path / "text.txt"
    text.write_text("please fail now\n")
    with pytest.raises(LMError, match="lmplz failed with exit status 3") as info:
        build_lm([text], tmp_path / "lm", binaries=fake_kenlm)
    assert "ERROR: bad corpus" in str(info.value)
    assert str(info.value).count("progress line") < 50
    assert not list((tmp_path / "lm").glob("*.tmp")) and not (tmp_path / "lm" / "tmp").exists()


@pytest.mark.parametrize(
    "options", [{"order": 1}, {"order": 7}, {"prune": [1]}, {"prune": [0, 2, 1]}, {"prune": [0, 0, 0, 0]}]
)
def test_build_lm_rejects_bad_options(tmp_path, options):
    with pytest.raises(ConfigError):
        build_lm([tmp_path / "unused.txt"], tmp_path / "lm", **options)


def test_cli_lm_build(tmp_path, fake_kenlm, monkeypatch, capsys):
    monkeypatch.setattr("asr.lm.build.kenlm_binaries", lambda: fake_kenlm)
    text = tmp_path / "text.txt"
    text.write_text("one two\n")
    out = tmp_path / "lm"
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--output", str(out), "--no-binary"]) == EXIT_OK
    assert json.loads((out / "lm.json").read_text())["order"] == 2
    assert (out / "lm.arpa").is_file() and not (out / "lm.bin").exists()
    assert main(["lm", "build", "--text", str(tmp_path / "missing.txt"), "--output", str(out)]) == EXIT_ERROR
    assert "missing.txt does not exist" in capsys.readouterr().err


@pytest.fixture(scope="session")
def real_kenlm() -> KenLMBinaries:
    """KenLM from PATH or the user cache, built there once (minutes) if absent."""
    return kenlm_build.kenlm_binaries()


def seeded_sentences(count: int, seed: int = 0) -> list[str]:
    """Simple English sentences from a tiny grammar, plus the phrases the decoding test relies on."""
    import random

    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my sister", "the old man", "we", "they"]
    verbs = ["saw", "liked", "found", "painted", "carried"]
    objects = ["the mat", "a red ball", "the garden", "an apple", "the house"]
    sentences = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}" for _ in range(count)]
    return sentences + ["the cat sat on the mat"] * 20 + ["he wore a hat"] * 20


def padded_ngrams(sentences: list[str], order: int) -> set[tuple[str, ...]]:
    """Distinct n-grams of normalised sentences padded with <s> and </s>, as lmplz counts them."""
    grams = set()
    for sentence in sentences:
        words = ["<s>", *normalize_text(sentence).split(), "</s>"]
        grams.update(tuple(words[i : i + order]) for i in range(len(words) - order + 1))
    return grams


def emissions_for(words: list[str], tokenizer: CharTokenizer, confusable: dict[str, str] | None = None):
    """``(1, T, C)`` log-probs spelling ``words``: one peaked frame per character, a blank frame
    between characters, ``|`` between words; ``confusable`` splits a letter's mass with another."""
    import torch

    frames = []
    for i, word in enumerate(words):
        for char in (WORD_DELIMITER if i else "") + word:
            frames += [char, BLANK]
    probs = torch.full((len(frames), tokenizer.vocab_size), 1e-4)
    for t, token in enumerate(frames):
        probs[t, tokenizer.tokens.index(token)] = 1.0
        if confusable and token in confusable:
            probs[t, tokenizer.tokens.index(confusable[token])] = 1.0
    return (probs / probs.sum(-1, keepdim=True)).log().unsqueeze(0)


@pytest.mark.slow
def test_real_kenlm_lm_is_usable_by_the_ctc_decoder(tmp_path, real_kenlm):
    from torchaudio.models.decoder import ctc_decoder

    sentences = seeded_sentences(300)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(sentences) + "\n")
    files = build_lm([text], tmp_path / "lm", order=3, keep_arpa=True, binaries=real_kenlm)

    vocabulary = {w for s in sentences for w in normalize_text(s).split()}
    expected = [len(vocabulary) + 3] + [len(padded_ngrams(sentences, n)) for n in (2, 3)]  # + <s> </s> <unk>
    assert read_ngram_counts(files.arpa) == expected
    assert json.loads(files.metadata.read_text())["ngram_counts"] == expected
    assert files.lm.read_bytes().startswith(b"mmap lm http://kheafield.com/code")

    tokenizer = CharTokenizer()
    decoder = ctc_decoder(
        lexicon=str(files.lexicon), tokens=list(tokenizer.tokens), lm=str(files.lm),
        blank_token=BLANK, sil_token=WORD_DELIMITER, beam_size=20,
    )  # fmt: skip
    clear = decoder(emissions_for(["THE", "CAT", "SAT"], tokenizer))
    assert clear[0][0].words == ["THE", "CAT", "SAT"]
    # "M" and "H" are equally likely acoustically: only the LM can choose between MAT and HAT.
    ambiguous = {"M": "H"}
    assert decoder(emissions_for(["ON", "THE", "MAT"], tokenizer, ambiguous))[0][0].words[-1] == "MAT"
    assert decoder(emissions_for(["WORE", "A", "MAT"], tokenizer, ambiguous))[0][0].words[-1] == "HAT"

    # The compact binary (a quantised trie, for shipping) makes the same choices.
    compact = build_lm([text], tmp_path / "compact", order=3, compact=True, binaries=real_kenlm)
    assert json.loads(compact.metadata.read_text())["binary_options"] == ["-q", "8", "-b", "8", "trie"]
    decoder = ctc_decoder(
        lexicon=str(compact.lexicon), tokens=list(tokenizer.tokens), lm=str(compact.lm),
        blank_token=BLANK, sil_token=WORD_DELIMITER, beam_size=20,
    )  # fmt: skip
    assert decoder(emissions_for(["ON", "THE", "MAT"], tokenizer, ambiguous))[0][0].words[-1] == "MAT"
    assert decoder(emissions_for(["WORE", "A", "MAT"], tokenizer, ambiguous))[0][0].words[-1] == "HAT"


def test_lexicon_for_an_existing_arpa_plain_or_gzipped(tmp_path):
    import gzip

    from tests.test_beam import ARPA

    plain = tmp_path / "lm.arpa"
    plain.write_text(ARPA)
    with gzip.open(tmp_path / "lm.arpa.gz", "wt") as f:
        f.write(ARPA)
    for arpa in (plain, tmp_path / "lm.arpa.gz"):
        assert main(["lm", "lexicon", "--arpa", str(arpa), "--output", str(tmp_path / "lex.txt")]) == 0
        assert (tmp_path / "lex.txt").read_text() == "HELLA\tH E L L A |\nHELLO\tH E L L O |\n"
    (tmp_path / "empty.arpa").write_text("\\data\\\n")
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "empty.arpa"), "--output", str(tmp_path / "x")]) == 2
