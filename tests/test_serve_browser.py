"""The dictation page in Debian's headless Chromium, a WAV file as its microphone.

Chromium's fake capture device plays the file in real time; the page captures it through its
AudioWorklet, sends 16 kHz pcm16 over the WebSocket and shows the segments. Chromium resamples
the file itself, so the words are compared with the recognizer's loosely, not sample for sample.
"""

from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile

import asr
from asr.audio import SAMPLE_RATE, load_audio
from asr.serve.config import ServeConfig
from streaming.stream import Recognizer
from tests.serve_server import running_server

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
KEY = "browser-key"
PAGE_TIMEOUT_SECONDS = 90  # the file plays in real time, on a busy machine
MAX_CER = 0.4  # against the recognizer's text for the file itself
SILENCE_SECONDS = 3  # after the speech: the segment closes on trailing silence

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMEDRIVER.exists(), reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]  # fmt: skip


@pytest.fixture
def microphone_wav(tmp_path, shared_data) -> tuple[Path, str]:
    """A 16-bit WAV of real speech then silence, and the text the recognizer gives for it."""
    speech = load_audio(shared_data / "ljspeech" / "wavs" / "LJ001-0003.opus")
    audio = np.concatenate(
        [np.zeros(SAMPLE_RATE // 2, np.float32), speech, np.zeros(SAMPLE_RATE * SILENCE_SECONDS, np.float32)]
    )
    path = tmp_path / "microphone.wav"
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    stream = Recognizer(asr.load_model("streaming")).create_stream()
    stream.accept_waveform(audio)
    return path, stream.finish().text


def _browser(wav: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_the_page_shows_the_words_spoken_into_its_microphone(microphone_wav) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wav, expected = microphone_wav
    with running_server(ServeConfig(api_key=KEY)) as server:
        driver = _browser(wav)
        try:
            driver.get(f"{server.url}/?api_key={KEY}")
            driver.find_element(By.ID, "start").click()
            WebDriverWait(driver, PAGE_TIMEOUT_SECONDS).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#segments li .text")
            )
            segments = driver.find_elements(By.CSS_SELECTOR, "#segments li")
            shown = " ".join(s.find_element(By.CLASS_NAME, "text").text for s in segments)
            times = segments[0].find_element(By.CLASS_NAME, "time").text
            driver.find_element(By.ID, "copy").click()
            driver.find_element(By.ID, "stop").click()
        finally:
            driver.quit()
        assert server.healthy({"Authorization": f"Bearer {KEY}"})
    # The model's spelling is rough and Chromium's resampling is not ours: characters, not words.
    assert expected and jiwer.cer(expected, shown) < MAX_CER, (shown, expected)
    assert "–" in times and times.startswith("0:")
