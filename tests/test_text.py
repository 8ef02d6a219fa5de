import pytest

from asr.text import BLANK, normalize_text, number_to_words
from asr.tokenizer import CharTokenizer


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            "She had your dark suit in greasy wash water all year.",
            "SHE HAD YOUR DARK SUIT IN GREASY WASH WATER ALL YEAR",
        ),
        ("Don't ask me to carry an oily rag like that.", "DON'T ASK ME TO CARRY AN OILY RAG LIKE THAT"),
        ("  'Quoted,'  he   said -- twice!  ", "QUOTED HE SAID TWICE"),
        ("O\u2019Brien\u2019s caf\u00e9", "O'BRIEN'S CAFE"),
        ("the 21st of 3 rooms", "THE TWENTY FIRST OF THREE ROOMS"),
        (
            "1,250 items at 3.5 or 42% off",
            "ONE THOUSAND TWO HUNDRED FIFTY ITEMS AT THREE POINT FIVE OR FORTY TWO PERCENT OFF",
        ),
        ("rock & roll", "ROCK AND ROLL"),
        ("$3.50 or $1 or $1,200", "THREE DOLLARS AND FIFTY CENTS OR ONE DOLLAR OR ONE THOUSAND TWO HUNDRED DOLLARS"),
        ("well-known", "WELL KNOWN"),
        ("", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize_text(raw) == expected


def test_normalisation_is_idempotent():
    text = normalize_text("It's 7 o'clock; the 2nd bell rang!")
    assert normalize_text(text) == text == "IT'S SEVEN O'CLOCK THE SECOND BELL RANG"


@pytest.mark.parametrize(
    "n, words",
    [(0, "ZERO"), (13, "THIRTEEN"), (40, "FORTY"), (99, "NINETY NINE"), (100, "ONE HUNDRED"),
     (101, "ONE HUNDRED ONE"), (2024, "TWO THOUSAND TWENTY FOUR"), (1_000_000, "ONE MILLION")],
)  # fmt: skip
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_tokenizer_has_blank_first_and_round_trips():
    tokenizer = CharTokenizer()
    assert tokenizer.tokens[0] == BLANK and tokenizer.blank_id == 0
    ids = tokenizer.encode("DON'T STOP")
    assert 0 not in ids
    assert tokenizer.decode(ids) == "DON'T STOP"
    assert CharTokenizer.from_dict(tokenizer.to_dict()) == tokenizer


def test_tokenizer_rejects_unnormalised_text():
    with pytest.raises(ValueError, match="normalise the text first"):
        CharTokenizer().encode("hello")


def test_tokenizer_requires_blank_first():
    with pytest.raises(ValueError, match="blank"):
        CharTokenizer(tokens=("A", BLANK))
