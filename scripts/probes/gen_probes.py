#!/usr/bin/python3
"""Generate the shipped concept probes (probes/*.json) from Debian data.

Needs (Debian 12):
  apt-get install wordnet-base        # WordNet 3.0 database under /usr/share/wordnet
  the demo model's training books as scripts/model/extract_corpus.py writes them
  (default /work/train/corpus; --books DIR): austen.txt, web.txt, kjv.txt,
  tdavid.txt, mhcc.txt, devil.txt, the
  books of the committed models/demo (models/demo/README.md)

Usage: /usr/bin/python3 scripts/probes/gen_probes.py [--wordnet DIR] [--books DIR] [--out DIR]

Writes probes/past_tense_verbs.json, european_cities.json, math_operations.json,
control_random_words.json (format: probes/README.md). Standard library only;
byte-for-byte deterministic for the same WordNet files and books (sorted
iteration everywhere, random.Random(SEED) for the control sample).
"""
import argparse
import json
import math
import os
import random
import re
import sys
from collections import Counter, defaultdict

WORDNET_PACKAGE = "wordnet-base (Debian 12, 1:3.0-37)"
WORDNET_LICENCE = ("WordNet 3.0 licence (Princeton University; permission to use, copy, modify and "
                   "distribute with the copyright notice: WordNet 3.0 Copyright 2006 by Princeton "
                   "University. All rights reserved.); /usr/share/doc/wordnet-base/copyright")
BOOKS = ["austen.txt", "web.txt", "kjv.txt", "tdavid.txt", "mhcc.txt", "devil.txt"]  # models/demo's training books
CAP = 2000                                    # words per probe at most
SEED = 13                                     # control sample
GENERATOR = "scripts/probes/gen_probes.py"

WORD_RE = re.compile(r"[^\W\d_]+")            # a run of letters, like the pre-tokenizer's \p{L}+
ALPHA = re.compile(r"^[a-z]+$")


# ------------------------------------------------------------------ WordNet
class WordNet:
    def __init__(self, d):
        self.d = d
        self.synsets = {}   # (pos, offset) -> (lemmas with case, pointers [(sym, pos, offset)])
        for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")):
            with open(os.path.join(d, "data." + name), encoding="latin-1") as f:
                for line in f:
                    if line.startswith("  "):
                        continue
                    self._parse(pos, line)

    def _parse(self, pos, line):
        t = line.split(" | ")[0].split()
        off, nw = t[0], int(t[3], 16)
        lemmas = [re.sub(r"\([a-z]+\)$", "", t[4 + 2 * i]) for i in range(nw)]
        i = 4 + 2 * nw
        np = int(t[i])
        ptrs = []
        for k in range(np):
            sym, o, p = t[i + 1 + 4 * k], t[i + 2 + 4 * k], t[i + 3 + 4 * k]
            ptrs.append((sym, "a" if p == "s" else p, o))
        self.synsets[("a" if pos == "s" else pos, off)] = (lemmas, ptrs)

    def pointers(self, key, sym):
        return [(p, o) for s, p, o in self.synsets[key][1] if s == sym]

    def closure(self, key, sym):
        seen, todo = {key}, [key]
        while todo:
            k = todo.pop()
            for nk in self.pointers(k, sym):
                if nk not in seen:
                    seen.add(nk)
                    todo.append(nk)
        return seen

    def synset_of(self, lemma, pos, sense):
        """(pos, offset) of sense `sense` (1-based) of lemma in index.<pos>."""
        name = {"n": "noun", "v": "verb"}[pos]
        with open(os.path.join(self.d, "index." + name), encoding="latin-1") as f:
            for line in f:
                t = line.split()
                if t and t[0] == lemma:
                    return (pos, t[-int(t[2]) + sense - 1])
        sys.exit("gen_probes: no '%s' in index.%s" % (lemma, name))


def index_lemmas(d):
    """Every lemma (lower case, as index.* spells it) -> set of parts of speech."""
    out = defaultdict(set)
    for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")):
        with open(os.path.join(d, "index." + name), encoding="latin-1") as f:
            for line in f:
                if not line.startswith(" "):
                    out[line.split()[0]].add(pos)
    return out


# ------------------------------------------------------------------ books
def book_counts(books_dir):
    c = Counter()
    for b in BOOKS:
        p = os.path.join(books_dir, b)
        if not os.path.exists(p):
            sys.exit("gen_probes: missing training book '%s' (run scripts/model/extract_corpus.py "
                     "or pass --books DIR)" % p)
        with open(p, encoding="utf-8") as f:
            for m in WORD_RE.finditer(f.read()):
                c[m.group().lower()] += 1
    return c


def capped(words, counts):
    """The CAP most frequent words in the books (ties by spelling), sorted by spelling."""
    top = sorted(words, key=lambda w: (-counts[w], w))[:CAP]
    return sorted(top)


# ------------------------------------------------------------------ past tense
VOWELS = set("aeiou")


def regular_past(v):
    """English spelling rules for the regular -ed form of verb v (a-z only)."""
    if v.endswith("e"):
        return v + "d"
    if v.endswith("y") and len(v) > 1 and v[-2] not in VOWELS:
        return v[:-1] + "ied"
    if v.endswith("c"):
        return v + "ked"
    groups = re.findall(r"[aeiou]+", v)
    if (len(groups) == 1 and len(v) >= 3 and v[-1] not in VOWELS and v[-1] not in "wxy"
            and v[-2] in VOWELS and v[-3] not in VOWELS):
        return v + v[-1] + "ed"   # one syllable, consonant-vowel-consonant: stop -> stopped
    return v + "ed"


def third_person(form, base):
    return form in (base + "s", base + "es", base[:-1] + "ies") or (form, base) in (
        ("is", "be"), ("am", "be"), ("are", "be"), ("has", "have"), ("does", "do"))


def participle_only(form, others):
    """Among a verb's irregular forms, the ones that are only past participles: those
    ending in n or ne where a sibling does not (went/gone, knew/known, did/done,
    bore/borne), the u-forms of a/u pairs (sang/sung, began/begun), and a lone
    -en/-wn form (beaten, sewn, shown, proven: the past is regular or the base)."""
    if not others:
        return form.endswith(("en", "wn"))
    if form.endswith(("n", "ne")) and any(not o.endswith(("n", "ne")) for o in others):
        return True
    return any(len(o) == len(form) and [i for i in range(len(o)) if o[i] != form[i]] ==
               [form.index("u")] and o[form.index("u")] == "a" for o in others if "u" in form)


def past_tense(d, lemmas, counts):
    verbs = set()
    with open(os.path.join(d, "index.verb"), encoding="latin-1") as f:
        for line in f:
            w = line.split()[0]
            if not line.startswith(" ") and ALPHA.match(w):
                verbs.add(w)
    exc = defaultdict(set)
    with open(os.path.join(d, "verb.exc"), encoding="latin-1") as f:
        for line in f:
            form, base = line.split()[:2]
            if ALPHA.match(form) and ALPHA.match(base) and not form.endswith("ing") \
                    and not third_person(form, base):
                exc[base].add(form)
    forms = {}  # form -> set of flags ("participle": also the past participle)
    for v in sorted(verbs | set(exc)):
        fs = sorted(exc.get(v, ()))
        past = [f for f in fs if not participle_only(f, [o for o in fs if o != f])]
        parts = [f for f in fs if f not in past]
        if not past:
            if any(p == v + "en" for p in parts):
                continue   # beat/beat/beaten: the past is the base form, left out
            past = [regular_past(v)]   # the regular form (sew: sewed, sewn)
        for f in past:
            fl = forms.setdefault(f, set())
            # a regular -ed form is always also a participle (has proved, has melted
            # beside proven, molten); an irregular one when the verb has no separate
            # participle, except come/run and their compounds (came/come, ran/run)
            if f.endswith("ed") or (not parts and not (v.endswith("come") or v.endswith("run"))):
                fl.add("participle")
    for f, fl in forms.items():
        if lemmas.get(f):
            fl.add("ambiguous")   # also a WordNet lemma: a noun, adjective or verb (saw, left, tired)
    words = capped(forms, counts)
    return words, forms


# ------------------------------------------------------------------ cities
def european_cities(wn):
    europe = wn.synset_of("europe", "n", 1)
    kinds = set()
    for lemma in ("city", "national_capital", "state_capital", "provincial_capital", "port"):
        kinds |= wn.closure(wn.synset_of(lemma, "n", 1), "~")
    lowercase = set()                   # every lemma spelled in lower case somewhere
    proper = defaultdict(set)           # capitalised lemma -> synsets naming it
    for key, (lems, _) in wn.synsets.items():
        for l in lems:
            if l.islower():
                lowercase.add(l)
            else:
                proper[l].add(key)

    def in_europe(key):
        seen, todo = {key}, [key]
        while todo:
            k = todo.pop()
            if k == europe:
                return True
            for nk in wn.pointers(k, "#p"):
                if nk not in seen:
                    seen.add(nk)
                    todo.append(nk)
        return False

    cities = {}
    for key in sorted(wn.synsets):
        if key[0] != "n" or not any(k in kinds for k in wn.pointers(key, "@i")):
            continue
        if not in_europe(key):
            continue
        for l in wn.synsets[key][0]:
            if re.match(r"^[A-Z][a-z]+$", l):
                cities.setdefault(l, set()).add(key)
    flags = {}
    for name, keys in cities.items():
        fl = set()
        if name.lower() in lowercase:
            fl.add("ambiguous")         # also a common word: Nice, Bath, Reading
        if proper[name] - set(cities[name]):
            fl.add("other_referents")   # the name also names someone or something else
        flags[name] = fl
    return sorted(cities), flags


# ------------------------------------------------------------------ math
MATH_EXTRA = ["plus", "minus", "times", "divided", "squared", "+", "-", "\u00d7", "\u00f7"]


def math_operations(wn, lemmas):
    root = wn.synset_of("mathematical_operation", "n", 1)
    tree = wn.closure(root, "~")
    words = set()
    for key in tree:
        for l in wn.synsets[key][0]:
            if ALPHA.match(l):
                words.add(l)
    in_tree = defaultdict(int)
    for key in tree:
        for l in wn.synsets[key][0]:
            in_tree[l.lower()] += 1
    senses = Counter()
    for (pos, off), (lems, _) in wn.synsets.items():
        for l in lems:
            senses[l.lower()] += 1
    flags = {}
    for w in sorted(words | set(MATH_EXTRA)):
        fl = set()
        if senses[w] > in_tree[w] or w in ("times", "plus", "minus", "-"):
            fl.add("ambiguous")         # other senses: division (army), times (time), - (hyphen)
        flags[w] = fl
    return sorted(flags), flags


# ------------------------------------------------------------------ control
def control(past_words, all_past_forms, exclude, counts):
    """For every past-tense word, one word of the books from the same frequency bin
    (floor(log2(count)), counts in the books, case folded), sampled without replacement."""
    bins = defaultdict(list)
    for w in sorted(counts):
        if (len(w) >= 2 and ALPHA.match(w) and w not in all_past_forms and w not in exclude
                and not w.endswith(("ed", "edst"))):
            bins[int(math.log2(counts[w]))].append(w)
    rng = random.Random(SEED)
    out = set()
    for w in sorted(past_words, key=lambda w: (-counts[w], w)):
        b = int(math.log2(counts[w])) if counts[w] else None
        pool = [c for c in bins.get(b, []) if c not in out] if b is not None else []
        if not pool:   # a word absent from the books, or an exhausted bin: the nearest lower bin
            for bb in sorted((k for k in bins if b is None or k < b), reverse=True):
                pool = [c for c in bins[bb] if c not in out]
                if pool:
                    break
        if pool:
            out.add(rng.choice(pool))
    return sorted(out)


# ------------------------------------------------------------------ output
def probe(name, description, files, match_case, notes, words, flags, cap_note, extra_source=None):
    fl = defaultdict(list)
    for w in words:
        for f in sorted(flags.get(w, ())):
            fl[f].append(w)
    src = {"package": WORDNET_PACKAGE, "files": files, "licence": WORDNET_LICENCE,
           "generator": GENERATOR}
    if extra_source:
        src.update(extra_source)
    return {"name": name, "description": description, "source": src, "match": "word",
            "case": match_case, "cap": cap_note, "notes": notes, "words": words,
            "flags": {k: fl[k] for k in sorted(fl)}}


def write(out_dir, obj):
    path = os.path.join(out_dir, obj["name"] + ".json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")
    print("%s: %d words" % (path, len(obj["words"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--books", default="/work/train/corpus")
    ap.add_argument("--out", default="probes")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.wordnet, "verb.exc")):
        sys.exit("gen_probes: no WordNet in '%s' (apt-get install wordnet-base)" % a.wordnet)
    counts = book_counts(a.books)
    wn = WordNet(a.wordnet)
    lemmas = index_lemmas(a.wordnet)
    books = {"frequencies": "word counts (letter runs, case folded) in the training books of "
             "models/demo: %s, written by scripts/model/extract_corpus.py from Debian "
             "r-cran-janeaustenr, sword-text-web, bible-kjv-text, sword-comm-tdavid, sword-comm-mhcc and "
             "dict-devil (public domain texts)"
             % ", ".join(BOOKS)}

    past_words, past_flags = past_tense(a.wordnet, lemmas, counts)
    write(a.out, probe(
        "past_tense_verbs",
        "English past-tense verb forms: WordNet's irregular forms and the regular -ed forms of "
        "WordNet's one-word verbs",
        ["/usr/share/wordnet/verb.exc", "/usr/share/wordnet/index.verb"], "insensitive",
        ["irregular forms come from verb.exc (its -ing and -s forms left out); a verb with several "
         "irregular forms keeps those that are not only participles (went, not gone; sang, not "
         "sung); every other verb gets its regular -ed form by English spelling rules (love -> "
         "loved, try -> tried, stop -> stopped for one-syllable consonant-vowel-consonant verbs, "
         "panic -> panicked)",
         "flag participle: the form is also the past participle (walked, brought), so a token may "
         "be a participle or an adjective (has walked, was brought); drop it for unambiguous "
         "past forms only (went, sang, knew)",
         "flag ambiguous: the form is also a WordNet lemma of its own (saw, left, found, tired, "
         "rose): a noun, adjective or another verb's base",
         "case-insensitive: Walked at the start of a sentence matches"],
        past_words, past_flags,
        "the %d forms most frequent in the training books (ties by spelling) of %d generated"
        % (CAP, len(past_flags)), books))

    city_words, city_flags = european_cities(wn)
    write(a.out, probe(
        "european_cities",
        "European cities: WordNet instances of city, national/state/provincial capital or port "
        "whose part-holonym chain reaches Europe",
        ["/usr/share/wordnet/data.noun", "/usr/share/wordnet/index.noun"], "sensitive",
        ["one-word capitalised names only (The Hague, Saint-Tropez and other multi-word or "
         "hyphenated names are left out: they are not one GPT-2 pre-token)",
         "flag ambiguous: the name is also a common lower-case word (Nice, Bath, Reading, Split); "
         "case-sensitive matching keeps nice out but not Nice at the start of a sentence",
         "flag other_referents: WordNet uses the name for someone or something else too (Paris the "
         "Trojan prince, Berlin the composer)",
         "case-sensitive: paris does not match"],
        city_words, city_flags, "all (%d, under the cap of %d)" % (len(city_words), CAP)))

    math_words, math_flags = math_operations(wn, lemmas)
    write(a.out, probe(
        "math_operations",
        "Mathematical operations: WordNet hyponyms of mathematical_operation (noun), and the words "
        "and symbols plus, minus, times, divided, squared, +, -, \u00d7, \u00f7",
        ["/usr/share/wordnet/data.noun", "/usr/share/wordnet/index.noun"], "insensitive",
        ["one-word lemmas of the mathematical_operation tree (addition, division, integration, ...)",
         "symbols are words too: a pre-token of non-letters without its leading space, so + "
         "matches in 2 + 3 and 2+3 but not in += (the pre-token is +=)",
         "flag ambiguous: the word has senses outside mathematics (division of an army, times as "
         "the plural of time, - as a hyphen or dash)"],
        math_words, math_flags, "all (%d, under the cap of %d)" % (len(math_words), CAP)))

    all_forms = set(past_flags)
    with open(os.path.join(a.wordnet, "verb.exc"), encoding="latin-1") as f:
        all_forms |= set(line.split()[0] for line in f)   # every irregular form (sprung, been)
    ctl = control(past_words, all_forms, set(w.lower() for w in city_words) | set(math_words),
                  counts)
    write(a.out, probe(
        "control_random_words",
        "Control: words of the training books sampled to match the frequency profile of "
        "past_tense_verbs, so scores show what chance looks like",
        [], "insensitive",
        ["for every past_tense_verbs word, one word of the books with the same floor(log2(count)) "
         "(the nearest lower bin when a bin runs out), drawn without replacement by "
         "random.Random(%d); words of the other probes, every generated past-tense form, every "
         "form in verb.exc and every word ending in -ed or -edst are never drawn" % SEED,
         "sampled from the training books (present when this was generated), not from "
         "examples/demo_corpus.txt"],
        ctl, {}, "as many as past_tense_verbs (%d)" % len(ctl),
        dict(books, package="r-cran-janeaustenr, sword-text-web, bible-kjv-text (Debian 12, through "
             "scripts/model/extract_corpus.py); " + WORDNET_PACKAGE + " for the words left out",
             files=["/work/train/corpus/" + b for b in BOOKS],
             licence="the books are public domain texts (NOTICE, examples/README); the words "
             "left out come from WordNet: " + WORDNET_LICENCE)))


if __name__ == "__main__":
    main()
