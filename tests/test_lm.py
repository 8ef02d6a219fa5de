"""Language-model building: text preparation, lexicon, KenLM download/build, and a real LM."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr import kenlm_build
from asr.cli import EXIT_ERROR, EXIT_OK, main
from asr.errors import ConfigError
from asr.kenlm_build import APT_HINT, KENLM_SOURCE_SHA256, KenLMBinaries, KenLMError
from asr.lm import (
    LMError,
    build_lm,
    prepare_corpus,
    read_ngram_counts,
    split_sentences,
    strip_gutenberg,
    text_sentences,
    write_lexicon,
)
from asr.text import BLANK, LETTERS, WORD_DELIMITER, CharTokenizer, normalize_text

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


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), (b"", "is empty"), (b"... -- !!\n\n", "holds no words")],
)
def test_prepare_corpus_names_the_bad_file(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LMError, match=message) as info:
        prepare_corpus([path], tmp_path / "corpus.txt")
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
    monkeypatch.setattr("asr.lm.kenlm_binaries", lambda: fake_kenlm)
    text = tmp_path / "text.txt"
    text.write_text("one two\n")
    out = tmp_path / "lm"
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--output", str(out), "--no-binary"]) == EXIT_OK
    assert json.loads((out / "lm.json").read_text())["order"] == 2
    assert (out / "lm.arpa").is_file() and not (out / "lm.bin").exists()
    assert main(["lm", "build", "--text", str(tmp_path / "missing.txt"), "--output", str(out)]) == EXIT_ERROR
    assert "missing.txt does not exist" in capsys.readouterr().err


# --- KenLM: finding, downloading, unpacking -----------------------------------------------------


@pytest.fixture
def http_dir(tmp_path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1: ``(directory, base URL)``."""
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> str:
    """Write a gzipped tarball of ``members`` (name -> content) and symlinks; return its SHA-256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verify_and_extract(tmp_path, http_dir):
    root, url = http_dir
    sha = make_tarball(root / "src.tar.gz", {"kenlm-x/CMakeLists.txt": b"project(x)\n", "kenlm-x/lm/a.cc": b"int a;"})
    archive = kenlm_build.download_source(f"{url}/src.tar.gz", tmp_path / "dl.tar.gz", sha)
    source = kenlm_build.extract_source(archive, tmp_path / "src")
    assert source == tmp_path / "src" / "kenlm-x"
    assert (source / "lm" / "a.cc").read_bytes() == b"int a;"


def test_download_refuses_checksum_mismatch(tmp_path, http_dir):
    root, url = http_dir
    make_tarball(root / "src.tar.gz", {"kenlm-x/CMakeLists.txt": b"tampered\n"})
    dest = tmp_path / "dl.tar.gz"
    with pytest.raises(KenLMError, match="SHA-256 .* expected " + KENLM_SOURCE_SHA256):
        kenlm_build.download_source(f"{url}/src.tar.gz", dest)
    assert not dest.exists()


def test_download_reports_http_errors(tmp_path, http_dir):
    _, url = http_dir
    with pytest.raises(KenLMError, match="cannot download .*404"):
        kenlm_build.download_source(f"{url}/missing.tar.gz", tmp_path / "dl.tar.gz")


@pytest.mark.slow
def test_pinned_checksum_matches_the_sdist_on_pypi(tmp_path):
    archive = kenlm_build.download_source(kenlm_build.KENLM_SOURCE_URL, tmp_path / "dl.tar.gz")
    assert (kenlm_build.extract_source(archive, tmp_path / "src") / "lm" / "builder" / "lmplz_main.cc").is_file()


@pytest.mark.parametrize(
    "members, links, message",
    [
        ({"../evil": b"x"}, None, "leaves the target directory"),
        ({"kenlm/../../evil": b"x"}, None, "leaves the target directory"),
        ({"/abs": b"x"}, None, "absolute path"),
        ({"kenlm/CMakeLists.txt": b""}, {"kenlm/link": "/etc/passwd"}, "link"),
        ({"kenlm/README": b"no cmake here"}, None, "no CMakeLists.txt"),
    ],
)
def test_extract_refuses_hostile_or_foreign_archives(tmp_path, members, links, message):
    archive = tmp_path / "hostile.tar.gz"
    make_tarball(archive, members, links)
    dest = tmp_path / "out" / "src"
    with pytest.raises(KenLMError, match=message):
        kenlm_build.extract_source(archive, dest)
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()


def make_fake_install(directory: Path) -> None:
    (directory / "bin").mkdir(parents=True)
    for name in kenlm_build.BINARY_NAMES:
        (directory / "bin" / name).write_text("#!/bin/sh\n")
        (directory / "bin" / name).chmod(0o755)


def test_binaries_found_on_path_then_in_cache(tmp_path, monkeypatch):
    make_fake_install(tmp_path / "path")
    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: str(tmp_path / "path" / "bin" / name))
    on_path = kenlm_build.kenlm_binaries(cache_dir=tmp_path / "cache")
    assert on_path.lmplz == tmp_path / "path" / "bin" / "lmplz" and on_path.version is None

    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: None)
    make_fake_install(tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}")
    cached = kenlm_build.kenlm_binaries(cache_dir=tmp_path / "cache", source_url="http://127.0.0.1:9/unused")
    assert cached.build_binary.parent == tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}" / "bin"
    assert cached.version == kenlm_build.KENLM_VERSION


def test_missing_prerequisites_name_the_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: None)
    with pytest.raises(KenLMError) as info:
        kenlm_build.kenlm_binaries(cache_dir=tmp_path, source_url="http://127.0.0.1:9/never-fetched")
    message = str(info.value)
    assert "cmake" in message and "C++ compiler" in message
    assert (
        "apt-get install cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev "
        "libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev" in message
    )
    assert APT_HINT in message


def test_missing_boost_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(kenlm_build, "_include_dirs", lambda: [tmp_path])
    monkeypatch.setattr(kenlm_build, "_library_dirs", lambda: [tmp_path])
    with pytest.raises(KenLMError, match="boost/program_options.hpp.*libboost_thread.*libboost-thread-dev"):
        kenlm_build.check_build_prerequisites()


# --- slow: real builds --------------------------------------------------------------------------

TINY_CMAKE_PROJECT = {
    "tiny/CMakeLists.txt": (
        b"cmake_minimum_required(VERSION 3.10)\nproject(tiny CXX)\n"
        b"set(EXECUTABLE_OUTPUT_PATH ${PROJECT_BINARY_DIR}/bin)\n"
        b"add_executable(lmplz main.cc)\nadd_executable(build_binary main.cc)\n"
    ),
    "tiny/main.cc": b"int main() { return 0; }\n",
}


@pytest.mark.slow
def test_build_from_source_once_for_concurrent_callers(tmp_path, http_dir, monkeypatch):
    """The whole build path on a tiny cmake project: two threads ask at once, one build happens."""
    root, url = http_dir
    sha = make_tarball(root / "tiny.tar.gz", TINY_CMAKE_PROJECT)
    monkeypatch.setattr(kenlm_build, "KENLM_SOURCE_SHA256", sha)
    monkeypatch.setattr(kenlm_build, "_binaries_on_path", lambda: None)
    monkeypatch.setenv(kenlm_build.SOURCE_URL_ENV, f"{url}/tiny.tar.gz")
    downloads = []
    real_download = kenlm_build.download_source
    monkeypatch.setattr(kenlm_build, "download_source", lambda *a: downloads.append(a) or real_download(*a))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(kenlm_build.kenlm_binaries(tmp_path / "cache", jobs=1)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1] and len(downloads) == 1
    install = tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}"
    assert json.loads((install / "build.json").read_text())["source_sha256"] == sha
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_failed_compile_reports_the_log_and_installs_nothing(tmp_path, http_dir, monkeypatch):
    root, url = http_dir
    broken = dict(TINY_CMAKE_PROJECT, **{"tiny/main.cc": b"int main() { return syntax error; }\n"})
    monkeypatch.setattr(kenlm_build, "KENLM_SOURCE_SHA256", make_tarball(root / "tiny.tar.gz", broken))
    monkeypatch.setattr(kenlm_build, "_binaries_on_path", lambda: None)
    with pytest.raises(KenLMError, match="KenLM compile failed") as info:
        kenlm_build.kenlm_binaries(tmp_path / "cache", source_url=f"{url}/tiny.tar.gz", jobs=1)
    assert "syntax" in str(info.value)
    failure_log = tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}-build.log"
    assert "error" in failure_log.read_text()
    assert not (tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}").exists()


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
