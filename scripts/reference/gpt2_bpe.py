#!/usr/bin/python3
"""Pure-Python GPT-2 byte-level BPE, equivalent to OpenAI's gpt-2/src/encoder.py.

Uses the `regex` module and models/gpt2-tokenizer/{vocab.json,merges.txt}.
  from gpt2_bpe import Encoder; enc = Encoder.load(); ids = enc.encode(text)
As a script: gpt2_bpe.py FILE|-  prints the ids of the file's text as a JSON array.
bytes_to_unicode and vocab_bytes need only the standard library (regex is
imported by the first Encoder).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "..", "models", "gpt2-tokenizer")
PAT_TEXT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def pre_tokenizer():
    """encoder.py's pre-tokenizing pattern, compiled with the `regex` module."""
    try:
        import regex
    except ImportError:
        sys.exit("scripts/reference/gpt2_bpe.py needs the Python module regex: install Debian's "
                 "python3-regex (apt-get install python3-regex)")
    return regex.compile(PAT_TEXT)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def vocab_bytes(d=DEFAULT_DIR):
    """id -> bytes of every token of d/vocab.json (standard library only)."""
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    return {i: bytes(byte_of[ch] for ch in tok) for tok, i in vocab.items()}


def get_pairs(word):
    return set(zip(word, word[1:]))


class Encoder:
    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = pre_tokenizer()

    @classmethod
    def load(cls, d=DEFAULT_DIR):
        with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
            encoder = json.load(f)
        with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:] if l.strip()]
        return cls(encoder, merges)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        """GPT-2 ids of a str. Surrogate escapes (U+DC80..U+DCFF, from
        bytes.decode("utf-8", "surrogateescape")) stand for invalid bytes:
        neither letter, number nor space, they leave as their original bytes."""
        ids = []
        for tok in self.pat.findall(text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8", "surrogateescape"))
            ids.extend(self.encoder[t] for t in self.bpe(tok).split(" "))
        return ids

    def encode_bytes(self, data):
        """GPT-2 ids of raw bytes, valid UTF-8 or not (see encode)."""
        return self.encode(data.decode("utf-8", "surrogateescape"))

    def token_bytes(self, i):
        """The bytes of token id i."""
        return bytes(self.byte_decoder[c] for c in self.decoder[i])

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gpt2_bpe.py FILE|-")
    data = sys.stdin.read() if sys.argv[1] == "-" else open(sys.argv[1], encoding="utf-8").read()
    print(json.dumps(Encoder.load().encode(data)))
