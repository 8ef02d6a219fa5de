"""Synthetic training speech from Debian's speech engines.

Sentences (the training transcripts, sentences of modern English from ``text/modern/`` and
sentences drawn from the Gutenberg books) are spoken by flite, festival, RHVoice, pico and
espeak-ng voices at random rates and pitches, given a random vocal tract length (the whole
spectrum scaled by resampling), then degraded at random (level, reverberation, noise, telephone
band) so that clean synthetic speech sounds more like a recording. Only engines and voices whose
licences allow training and shipping are listed: RHVoice's evgeniy-eng and lyubov (CC BY-NC-ND)
and the MBROLA voices (non-commercial) are left out. Every choice is drawn from a generator seeded by the utterance's index, so the corpus
is the same however many worker processes make it, and an interrupted run resumes where it
stopped (finished files are kept).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.files import write_text_atomic
from asr.manifest import Utterance
from asr.text import normalize_text
from asr.train.augment import add_noise, band_limit, reverberate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    engine: str  # "flite", "festival", "rhvoice", "pico" or "espeak-ng"
    name: str
    # Relative chance of being picked: espeak-ng is robotic, so it is used less.
    weight: float = 1.0
    female: bool = False


FLITE_VOICES = (
    Voice("flite", "kal16", 1.0),
    Voice("flite", "awb", 1.0),
    Voice("flite", "rms", 1.0),
    Voice("flite", "slt", 1.5, female=True),
    Voice("flite", "kal", 0.5),
)
FESTIVAL_VOICES = (
    Voice("festival", "kal_diphone", 1.0),
    Voice("festival", "ked_diphone", 1.0),
    Voice("festival", "cmu_us_slt_arctic_hts", 1.5, female=True),
)
# RHVoice's English voices under the LGPL (evgeniy-eng and lyubov are CC BY-NC-ND: left out).
RHVOICE_VOICES = (
    Voice("rhvoice", "alan", 1.0),
    Voice("rhvoice", "bdl", 1.0),
    Voice("rhvoice", "clb", 1.0, female=True),
    Voice("rhvoice", "slt", 1.0, female=True),
)
# SVOX pico (Apache-2.0): one female voice per language.
PICO_VOICES = (Voice("pico", "en-US", 1.0, female=True), Voice("pico", "en-GB", 1.0, female=True))
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5")
ESPEAK_VOICES = tuple(
    Voice("espeak-ng", f"{accent}+{variant}", 0.04, female=variant.startswith("f"))
    for accent in ESPEAK_ACCENTS
    for variant in ESPEAK_VARIANTS
)
APT_PACKAGES = {
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "rhvoice": "rhvoice rhvoice-english (Debian contrib/non-free)",
    "pico": "libttspico-utils (Debian non-free)",
    "espeak-ng": "espeak-ng",
}
ENGINE_COMMAND = {
    "flite": "flite", "festival": "text2wave", "rhvoice": "RHVoice-test", "pico": "pico2wave", "espeak-ng": "espeak-ng"
}  # fmt: skip
ENGINE_VOICES = {
    "flite": FLITE_VOICES, "festival": FESTIVAL_VOICES, "rhvoice": RHVOICE_VOICES, "pico": PICO_VOICES,
    "espeak-ng": ESPEAK_VOICES,
}  # fmt: skip
FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"),)


def available_voices() -> list[Voice]:
    """The voices whose engine (and, for festival, voice package) is installed."""
    voices: list[Voice] = []
    for engine, candidates in ENGINE_VOICES.items():
        if shutil.which(ENGINE_COMMAND[engine]) is None:
            logger.warning(
                "%s is not installed (apt-get install %s); its voices are left out", engine, APT_PACKAGES[engine]
            )
            continue
        for voice in candidates:
            if engine == "festival" and not any(any(d.glob(f"*/{voice.name}")) for d in FESTIVAL_VOICE_DIRS):
                logger.warning("festival voice %s is missing (apt-get install %s)", voice.name, APT_PACKAGES[engine])
                continue
            voices.append(voice)
    return voices


@dataclass(frozen=True)
class DegradeConfig:
    """Chances and ranges of the random degradations applied to each synthetic utterance."""

    gain_db: tuple[float, float] = (-20.0, 0.0)
    reverb_prob: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.6)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    # Spectral slope of the noise: 0 white, 1 pink, 2 brown.
    noise_exponent: tuple[float, float] = (0.0, 2.0)
    band_limit_prob: float = 0.1


@dataclass(frozen=True)
class ProsodyConfig:
    """Ranges of speaking rate and pitch, drawn uniformly per utterance."""

    # Duration stretch: above 1 is slower.
    stretch: tuple[float, float] = (0.85, 1.35)
    # Mean F0 in Hz (flite only; festival keeps its voices' own pitch).
    male_f0: tuple[float, float] = (80.0, 150.0)
    female_f0: tuple[float, float] = (150.0, 260.0)
    # espeak-ng pitch on its 0-99 scale.
    espeak_pitch: tuple[float, float] = (20.0, 80.0)
    espeak_base_wpm: int = 170
    # RHVoice and pico pitch, in percent of the voice's own.
    pitch_percent: tuple[float, float] = (80.0, 125.0)
    # Vocal tract length: the waveform is resampled by this factor and played at 16 kHz, which
    # scales every frequency (formants and pitch) by it and the duration by its inverse; below 1
    # sounds like a longer tract (a larger speaker), above 1 like a shorter one (a child's).
    vocal_tract: tuple[float, float] = (0.88, 1.15)


@dataclass(frozen=True)
class Job:
    index: int
    text: str  # normalised transcript; the engine speaks it lower-cased
    out: Path


@dataclass(frozen=True)
class Rendition:
    """How one utterance is spoken: the random draws of :class:`ProsodyConfig`."""

    stretch: float  # duration stretch, above 1 slower
    f0: float  # flite's mean F0 in Hz
    espeak_pitch: float  # espeak-ng's 0-99 pitch
    pitch_percent: float  # RHVoice's and pico's pitch
    vocal_tract: float  # frequency scale by resampling (see ProsodyConfig.vocal_tract)


def speak(text: str, voice: Voice, how: Rendition, wav: Path, prosody: ProsodyConfig) -> None:
    """Run one engine to write ``text`` spoken by ``voice`` as ``how`` says to ``wav`` (the
    engine's own sample rate)."""
    spoken = text.lower()
    stretch = how.stretch
    if voice.engine == "flite":
        cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch:.3f}"]
        cmd += ["--setf", f"int_f0_target_mean={how.f0:.1f}", "-t", spoken, "-o", str(wav)]
    elif voice.engine == "festival":
        text_file = wav.with_suffix(".txt")
        text_file.write_text(spoken + "\n")
        cmd = [
            "text2wave",
            "-eval",
            f"(voice_{voice.name})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
        ]
        cmd += ["-o", str(wav), str(text_file)]
    elif voice.engine == "rhvoice":
        # RHVoice reads the text on stdin; its rate is a percentage of the voice's own.
        cmd = ["RHVoice-test", "-p", voice.name, "-R", str(SAMPLE_RATE), "-r", str(round(100 / stretch))]
        cmd += ["-t", str(round(how.pitch_percent)), "-o", str(wav)]
        subprocess.run(cmd, input=spoken, text=True, check=True, capture_output=True, timeout=120)
        return
    elif voice.engine == "pico":
        # pico takes its rate and pitch as markup around the text.
        marked = (
            f"<speed level='{round(100 / stretch)}'><pitch level='{round(how.pitch_percent)}'>{spoken}</pitch></speed>"
        )
        cmd = ["pico2wave", "-l", voice.name, "-w", str(wav), marked]
    else:
        wpm = round(prosody.espeak_base_wpm / stretch)
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(wpm), "-p", str(round(how.espeak_pitch)), "-w", str(wav)]
        cmd.append(spoken)
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def change_vocal_tract(waveform: np.ndarray, factor: float) -> np.ndarray:
    """``(T,)`` audio with every frequency scaled by ``factor`` (and its duration by
    ``1 / factor``): resampled from ``SAMPLE_RATE * factor`` to ``SAMPLE_RATE``."""
    if abs(factor - 1.0) < 1e-3:
        return waveform
    return librosa.resample(waveform, orig_sr=SAMPLE_RATE * factor, target_sr=SAMPLE_RATE, res_type="soxr_hq")


def degrade(waveform: np.ndarray, rng: np.random.Generator, config: DegradeConfig) -> np.ndarray:
    """Apply the random degradations of ``config`` to ``(T,)`` 16 kHz audio."""
    if rng.random() < config.reverb_prob:
        waveform = reverberate(waveform, rng.uniform(*config.rt60), SAMPLE_RATE, rng)
    if rng.random() < config.band_limit_prob:
        waveform = band_limit(waveform, SAMPLE_RATE)
    if rng.random() < config.noise_prob:
        waveform = add_noise(waveform, rng.uniform(*config.snr_db), rng.uniform(*config.noise_exponent), rng)
    peak = float(np.abs(waveform).max()) or 1.0
    gain = 10 ** (rng.uniform(*config.gain_db) / 20)
    return (waveform * (gain * 0.9 / peak)).astype(np.float32)


@dataclass(frozen=True)
class Synthesizer:
    voices: tuple[Voice, ...]
    seed: int
    prosody: ProsodyConfig = ProsodyConfig()
    degradation: DegradeConfig = DegradeConfig()

    def __call__(self, job: Job) -> tuple[Job, str]:
        """Make ``job.out`` (16 kHz FLAC) unless it exists; returns the job and the voice used."""
        rng = np.random.default_rng([self.seed, job.index])
        weights = np.array([v.weight for v in self.voices])
        voice = self.voices[rng.choice(len(self.voices), p=weights / weights.sum())]
        prosody = self.prosody
        how = Rendition(
            stretch=rng.uniform(*prosody.stretch),
            f0=rng.uniform(*(prosody.female_f0 if voice.female else prosody.male_f0)),
            espeak_pitch=rng.uniform(*prosody.espeak_pitch),
            pitch_percent=rng.uniform(*prosody.pitch_percent),
            vocal_tract=rng.uniform(*prosody.vocal_tract),
        )
        label = f"{voice.engine}-{voice.name}"
        if job.out.exists():
            return job, label
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            speak(job.text, voice, how, wav, prosody)
            waveform = change_vocal_tract(load_audio(wav, SAMPLE_RATE), how.vocal_tract)
            waveform = degrade(waveform, rng, self.degradation)
            partial = job.out.with_suffix(".partial.flac")
            sf.write(partial, waveform, SAMPLE_RATE, subtype="PCM_16")
            partial.replace(job.out)
        return job, label


def synthesize_corpus(
    sentences: Sequence[str], out_dir: Path, prefix: str, synthesizer: Synthesizer, workers: int = 2
) -> list[Utterance]:
    """Speak each sentence once, in ``workers`` processes; returns their manifest entries.

    Sentences the engines fail on are logged and left out.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [Job(i, text, out_dir / f"{prefix}-{i:06d}.flac") for i, text in enumerate(sentences)]
    utterances: list[Utterance] = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for job, label in pool.imap_unordered(_run, [(synthesizer, j) for j in jobs], chunksize=16):
            if label is None:
                continue
            info = sf.info(job.out)
            utterances.append(Utterance(job.out.resolve(), job.text, job.out.stem, info.duration, label))
            if len(utterances) % 1000 == 0:
                logger.info("synthesized %d / %d %s sentences", len(utterances), len(jobs), prefix)
    return sorted(utterances, key=lambda u: u.id)


def _run(args: tuple[Synthesizer, Job]) -> tuple[Job, str | None]:
    synthesizer, job = args
    try:
        return synthesizer(job)
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        logger.warning("could not synthesize %r into %s: %s", job.text, job.out, exc)
        return job, None


# Gutenberg texts: the licence header and footer are marked by these lines.
START_MARK = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG", re.MULTILINE)
END_MARK = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"'’”)\]]*\s+")


def book_body(text: str) -> str:
    """The text between the Project Gutenberg header and footer (all of it if they are absent)."""
    start = START_MARK.search(text)
    if start:
        text = text[text.index("\n", start.end()) + 1 :]
    end = END_MARK.search(text)
    return text[: end.start()] if end else text


def book_sentences(text: str, min_words: int, max_words: int) -> list[str]:
    """Normalised sentences of ``min_words`` to ``max_words`` words from one book."""
    body = re.sub(r"\s+", " ", book_body(text).replace("_", " "))
    sentences = []
    for raw in SENTENCE_END.split(body):
        sentence = normalize_text(raw)
        if min_words <= len(sentence.split()) <= max_words:
            sentences.append(sentence)
    return sentences


@functools.cache
def sentence_pool(folder: Path, min_words: int, max_words: int) -> tuple[str, ...]:
    """Every distinct sentence of ``min_words`` to ``max_words`` words in the books, sorted."""
    pool: set[str] = set()
    for book in sorted(folder.glob("*.txt")):
        pool.update(book_sentences(book.read_text(encoding="utf-8", errors="replace"), min_words, max_words))
    return tuple(sorted(pool))


def gutenberg_sentences(folder: Path, count: int, seed: int, min_words: int = 4, max_words: int = 14) -> list[str]:
    """``count`` distinct sentences drawn at random (seeded) from the books in ``folder``."""
    ordered = sentence_pool(folder, min_words, max_words)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(ordered), size=min(count, len(ordered)), replace=False)
    logger.info("picked %d of %d Gutenberg sentences", len(picked), len(ordered))
    return [ordered[i] for i in sorted(picked)]


def write_sentences(path: Path, sentences: Sequence[str]) -> None:
    write_text_atomic(path, "".join(s + "\n" for s in sentences))


# Tokenised text (MASC, movie reviews) splits contractions off their word: "let 's", "do n't".
_SPLIT_CONTRACTION = re.compile(r"\s+(n't|'(?:s|re|ve|ll|d|m|t))\b", re.IGNORECASE)


def join_contractions(line: str) -> str:
    """``"let 's go , do n't"`` -> ``"let's go , don't"`` (tokenised text's contractions rejoined)."""
    return _SPLIT_CONTRACTION.sub(r"\1", line)


def modern_pool(
    files: Sequence[Path], exclude: Sequence[str] = (), min_words: int = 3, max_words: int = 20
) -> list[str]:
    """The sorted distinct normalised lines of ``min_words`` to ``max_words`` words in ``files``
    (one sentence or turn a line), none of them inside a text of ``exclude`` (the validation
    transcripts, say). Normalising 5 M words takes a while: build the pool once, draw from it
    with :func:`draw_sentences` as often as needed."""
    pool: set[str] = set()
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            sentence = normalize_text(join_contractions(line))
            if min_words <= len(sentence.split()) <= max_words:
                pool.add(sentence)
    held_out = [normalize_text(text) for text in exclude]
    ordered = sorted(s for s in pool if not any(s in text for text in held_out))
    logger.info("%d modern sentences from %d files", len(ordered), len(files))
    return ordered


def draw_sentences(pool: Sequence[str], count: int, seed: int) -> list[str]:
    """``count`` distinct sentences of ``pool`` drawn at random (seeded), in the pool's order."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[i] for i in sorted(picked)]
