#!/usr/bin/python3
"""Extract the demo-model corpus from Debian packages, without R or SWORD.

Sources (all fetched with `apt-get download`, unpacked with `dpkg-deb -x`):
  r-cran-janeaustenr  Jane Austen's six novels      R lazy-load DB (data/Rdata.rdb/.rdx)
  sword-text-web      World English Bible (engWEB2015eb, with deuterocanon)  SWORD zText
  bible-kjv-text      King James Bible              bible-kjv "EC02" compressed data file
  sword-comm-tdavid   C. H. Spurgeon, The Treasury of David (1869-1885)  SWORD zCom4
  sword-comm-mhcc     Matthew Henry's Concise Commentary               SWORD zCom4
  dict-devil          Ambrose Bierce, The Devil's Dictionary (1911)    dictd (gzip)
  r-cran-tokenizers   Moby Dick (object `mobydick`)  R lazy-load DB  -> HELD OUT

Output (default /work/train/corpus): one UTF-8 text file per source, LF line endings,
one paragraph per line-block, paragraphs separated by one blank line:
  austen.txt web.txt kjv.txt tdavid.txt mhcc.txt devil.txt  (training)
  mobydick.txt (held out, never trained on)
The extra sources (tdavid, mhcc, devil) are checked for Moby Dick text: no 8-word
sequence of Moby Dick may occur in them (--no-overlap-check to skip).
Sources considered and NOT used: dict-gcide (GPL-licensed dictionary), fortunes (mixed,
partly unattributed modern quotations).

Usage: extract_corpus.py [--out DIR] [--debs DIR] [--no-download]
"""
import argparse
import glob
import gzip
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

PACKAGES = ["r-cran-janeaustenr", "sword-text-web", "bible-kjv-text", "r-cran-tokenizers",
            "sword-comm-tdavid", "sword-comm-mhcc", "dict-devil"]
EXTRA = ["tdavid", "mhcc", "devil"]  # added for the second demo model (issue 12)


# ---------------------------------------------------------------- R serialization
class RReader:
    """Minimal reader for R's XDR serialization (format versions 2 and 3).

    Supports what data packages hold: NULL, symbols, pairlists, attributes, CHARSXP,
    logical/integer/double/string/generic vectors, references, environments and the
    common ALTREP classes (compact_intseq, wrap_*). Values become Python objects:
    vectors -> RVec (list with .attrs), strings -> str (None for NA)."""

    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def i32(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def f64s(self, n):
        v = struct.unpack_from(">%dd" % n, self.d, self.p)
        self.p += 8 * n
        return list(v)

    def i32s(self, n):
        v = struct.unpack_from(">%di" % n, self.d, self.p)
        self.p += 4 * n
        return list(v)

    def read_top(self):
        fmt = self.d[:2]
        if fmt != b"X\n":
            raise ValueError("not an XDR R serialization: %r" % fmt)
        self.p = 2
        version = self.i32()
        self.i32()  # writer version
        self.i32()  # min reader version
        if version == 3:
            n = self.i32()
            self.p += n  # native encoding
        elif version != 2:
            raise ValueError("unsupported R serialization version %d" % version)
        return self.item()

    def length(self):
        n = self.i32()
        if n == -1:
            hi = self.i32()
            lo = self.i32()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.i32()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == 254 or t == 0:  # NILVALUE_SXP / NILSXP
            return None
        if t in (253, 242, 241, 252, 251, 250):  # global/empty/base env, unbound, missing
            return ("special", t)
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.i32()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            name = self.item()
            sym = ("sym", name)
            self.refs.append(sym)
            return sym
        if t in (247, 249, 248):  # PERSISTSXP / NAMESPACESXP / PACKAGESXP
            self.i32()  # 0
            n = self.i32()
            names = [self.item() for _ in range(n)]
            v = ("namespace", names)
            self.refs.append(v)
            return v
        if t == 4:  # ENVSXP
            env = {"kind": "env"}
            self.refs.append(env)
            self.i32()  # locked
            env["enclos"] = self.item()
            env["frame"] = self.item()
            env["hashtab"] = self.item()
            env["attrs"] = self.item()
            return env
        if t in (2, 6, 239, 240, 5, 3, 17):  # LISTSXP, LANGSXP, ATTR*, PROMSXP, CLOSXP, DOTSXP
            attrs = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            node = RPair(tag, car, cdr)
            node.attrs = attrs
            return node
        if t == 238:  # ALTREP_SXP
            info = self.item()
            state = self.item()
            attrs = self.item()
            cls = info.car[1] if isinstance(info, RPair) else None
            v = self.altrep(cls, state)
            v.attrs = to_attr_dict(attrs)
            return v
        if t == 9:  # CHARSXP
            n = self.i32()
            if n == -1:
                return None
            s = self.d[self.p:self.p + n]
            self.p += n
            return s.decode("utf-8", errors="replace")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            v = RVec(self.i32s(n))
        elif t == 14:  # REALSXP
            n = self.length()
            v = RVec(self.f64s(n))
        elif t == 15:  # CPLXSXP
            n = self.length()
            f = self.f64s(2 * n)
            v = RVec([complex(f[2 * k], f[2 * k + 1]) for k in range(n)])
        elif t == 16:  # STRSXP
            n = self.length()
            v = RVec([self.item() for _ in range(n)])
        elif t in (19, 20):  # VECSXP, EXPRSXP
            n = self.length()
            v = RVec([self.item() for _ in range(n)])
        elif t == 24:  # RAWSXP
            n = self.length()
            v = RVec(list(self.d[self.p:self.p + n]))
            self.p += n
        else:
            raise ValueError("unsupported R SEXP type %d at offset %d" % (t, self.p - 4))
        v.rtype = t
        v.attrs = to_attr_dict(self.item()) if has_attr else {}
        return v

    def altrep(self, cls, state):
        if cls == "compact_intseq":
            n, start, step = [int(x) for x in state]
            return RVec([start + k * step for k in range(n)])
        if cls == "compact_realseq":
            n, start, step = state
            return RVec([start + k * step for k in range(int(n))])
        if cls and cls.startswith("wrap_"):
            return RVec(list(state.car))
        if cls == "deferred_string":
            return RVec([str(x) for x in state.car])
        raise ValueError("unsupported ALTREP class %r" % cls)


class RVec(list):
    rtype = None
    attrs = {}


class RPair:
    def __init__(self, tag, car, cdr):
        self.tag, self.car, self.cdr, self.attrs = tag, car, cdr, None


def to_attr_dict(pl):
    out = {}
    while isinstance(pl, RPair):
        name = pl.tag[1] if isinstance(pl.tag, tuple) else str(pl.tag)
        out[name] = pl.car
        pl = pl.cdr
    return out


def named_list(v):
    names = v.attrs.get("names", [])
    return dict(zip(names, v))


def lazyload_db(prefix):
    """Read an R lazy-load database (prefix.rdx + prefix.rdb) -> {name: object}."""
    idx = RReader(gzip.decompress(open(prefix + ".rdx", "rb").read())).read_top()
    idx = named_list(idx)
    rdb = open(prefix + ".rdb", "rb").read()
    out = {}
    for name, (off, ln) in named_list(idx["variables"]).items():
        blob = rdb[off:off + ln]
        ulen = struct.unpack(">I", blob[:4])[0]
        raw = zlib.decompress(blob[4:])
        if len(raw) != ulen:
            raise ValueError("%s: %s: length mismatch" % (prefix, name))
        out[name] = RReader(raw).read_top()
    return out


# ---------------------------------------------------------------- text helpers
def norm_newlines(s):
    return s.replace("\r\n", "\n").replace("\r", "\n")


def paragraphs_from_lines(lines):
    """Lines of a book (hard-wrapped, blank line between paragraphs) -> paragraphs."""
    paras, cur = [], []
    for ln in lines:
        ln = (ln or "").strip()
        if ln:
            cur.append(ln)
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def clean_para(p):
    p = p.replace("\u00a0", " ")
    return re.sub(r"[ \t\n]+", " ", p).strip()


def write_paras(path, paras):
    paras = [clean_para(p) for p in paras]
    paras = [p for p in paras if p]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(paras) + "\n")
    return len(paras)


# ---------------------------------------------------------------- sources
AUSTEN_ORDER = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma",
                "northangerabbey", "persuasion"]


def extract_austen(root):
    objs = lazyload_db(os.path.join(root, "usr/lib/R/site-library/janeaustenr/data/Rdata"))
    paras = []
    for name in AUSTEN_ORDER:
        v = objs[name]
        book = paragraphs_from_lines([norm_newlines(x or "") for x in v])
        paras.extend(book)
    return paras


def extract_mobydick(root):
    objs = lazyload_db(os.path.join(root, "usr/lib/R/site-library/tokenizers/data/Rdata"))
    v = objs["mobydick"]
    text = norm_newlines("\n".join(x for x in v if x is not None)).replace("\ufeff", "")
    # keep the book only: drop the Project Gutenberg header and licence trailer
    a = text.find("*** START OF")
    if a >= 0:
        text = text[text.find("\n", a) + 1:]
    b = text.find("*** END OF")
    if b >= 0:
        text = text[:b]
    paras = paragraphs_from_lines(text.split("\n"))
    while paras and paras[0].startswith("Produced by"):
        paras.pop(0)
    while paras and paras[-1].startswith("End of Project Gutenberg"):
        paras.pop()
    return paras


def extract_sword_ztext(moddir, letter="b", entry="<IIH", dedupe=False):
    """SWORD zText/zCom module: per testament, .Xzs (block index: offset, csize, usize as
    u32 LE), .Xzz (zlib blocks), .Xzv (per-verse entry: block u32, offset u32, size u16;
    zCom4/zText4: size u32). X is b (BlockType=BOOK) or c (CHAPTER).
    The OSIS markup is reduced to plain text; paragraphs from x-p divs and chapters.
    dedupe: keep one copy of entries that point at the same text (a commentary's note on a
    verse range is linked from every verse of the range; the Bible keeps its old extraction)."""
    pieces = []
    esz = struct.calcsize(entry)
    for t in ("ot", "nt"):
        bzs = open(os.path.join(moddir, t + "." + letter + "zs"), "rb").read()
        bzv = open(os.path.join(moddir, t + "." + letter + "zv"), "rb").read()
        bzz = open(os.path.join(moddir, t + "." + letter + "zz"), "rb").read()
        if not bzs:
            continue
        cache, done = {}, set()
        for k in range(len(bzv) // esz):
            b, o, s = struct.unpack_from(entry, bzv, k * esz)
            if not s or (dedupe and (b, o, s) in done):
                continue  # empty, or a linked entry (a commentary on a verse range)
            done.add((b, o, s))
            if b not in cache:
                off, csz, usz = struct.unpack_from("<III", bzs, b * 12)
                cache[b] = zlib.decompress(bzz[off:off + csz])
            pieces.append(cache[b][o:o + s].decode("utf-8", errors="replace"))
    osis = " ".join(pieces)
    PB = "\x00"  # paragraph break marker
    osis = re.sub(r"<note\b[^>]*/>", " ", osis)
    osis = re.sub(r"<note\b.*?</note>", "", osis, flags=re.S)
    osis = re.sub(r"<title\b[^>]*>(.*?)</title>", lambda m: PB + m.group(1) + PB, osis, flags=re.S)
    osis = re.sub(r"<(chapter|div)\b[^>]*/>", lambda m: PB if (m.group(1) == "chapter" or "x-p" in m.group(0) or "book" in m.group(0) or "introduction" in m.group(0)) else " ", osis)
    osis = re.sub(r"<lg\b[^>]*/?>|</lg>", PB, osis)
    osis = re.sub(r"<l\b[^>]*eID[^>]*/>|<lb\b[^>]*/>", " ", osis)
    osis = re.sub(r"<[^>]+>", "", osis)
    for a, b in (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        osis = osis.replace(a, b)
    osis = re.sub(r"[ \t\r\n]+", " ", osis)
    osis = re.sub(r" +([,.;:!?’”])", r"\1", osis)
    paras = [clean_para(p) for p in osis.split(PB)]
    return [p for p in paras if p]


def extract_web(root):
    return extract_sword_ztext(os.path.join(root, "usr/share/sword/modules/texts/ztext/engWEB2015eb"))


def extract_tdavid(root):
    """Spurgeon's Treasury of David (SWORD zCom4, chapter blocks)."""
    paras = extract_sword_ztext(os.path.join(root, "usr/share/sword/modules/comments/zcom/tdavid"), "c", "<III", dedupe=True)
    return [p for p in paras if re.search(r"[a-z]", p)]


def extract_mhcc(root):
    """Matthew Henry's Concise Commentary (SWORD zCom, book blocks, 10-byte verse entries)."""
    paras = extract_sword_ztext(os.path.join(root, "usr/share/sword/modules/comments/zcom/mhcc"), "b", "<IIH", dedupe=True)
    return [p for p in paras if re.search(r"[a-z]", p)]


def extract_devil(root):
    """Bierce's Devil's Dictionary from dictd's devil.dict.dz (dictzip = gzip): the
    text after the 00-database-* entries, from the preface on; entries are paragraphs,
    verse quotations are kept as one paragraph each."""
    text = gzip.decompress(open(os.path.join(root, "usr/share/dictd/devil.dict.dz"), "rb").read())
    text = norm_newlines(text.decode("utf-8", errors="replace"))
    a = text.find("PREFACE")
    text = text[a:] if a >= 0 else text
    paras = paragraphs_from_lines(text.split("\n"))
    paras = [re.sub(r"\s+[A-Z]\.[A-Z]\.$", "", p) for p in paras]  # trailing initials (G.J., A.B.)
    return [p.replace("_", "") for p in paras if not re.fullmatch(r"[A-Z.]+", p)]


def shingles(paras, n=8):
    out = set()
    for p in paras:
        w = re.findall(r"[a-z]+", p.lower())
        for i in range(len(w) - n + 1):
            out.add(" ".join(w[i:i + n]))
    return out


def check_no_mobydick(books, names):
    """Fail if any extra source shares an 8-word sequence with Moby Dick that is not
    also in the Bibles (Melville quotes scripture; those are not Moby Dick text)."""
    md = shingles(books["mobydick"])
    md -= shingles(books["kjv"]) | shingles(books["web"])
    for name in names:
        common = md & shingles(books[name])
        print("%-9s shares %d 8-word sequences with Moby Dick (outside the Bibles)%s"
              % (name, len(common), (": " + "; ".join(sorted(common)[:5])) if common else ""))
        if len(common) > 20:
            sys.exit("extract_corpus: %s contains Moby Dick text" % name)


def lzw_decode(buf, ulen):
    """LZW as in compress(1): 9..16-bit codes packed LSB-first, code 256 = clear,
    first free code 257, width grows when the next free code reaches 2**width."""
    out = bytearray()
    dic = [bytes([i]) for i in range(256)] + [b""]
    nb, bitpos, prev = 9, 0, None
    total = len(buf) * 8
    buf = bytes(buf) + b"\0\0\0\0"
    while bitpos + nb <= total and len(out) < ulen:
        byte = bitpos >> 3
        code = (int.from_bytes(buf[byte:byte + 4], "little") >> (bitpos & 7)) & ((1 << nb) - 1)
        bitpos += nb
        if code == 256:
            dic = dic[:257]
            nb, prev = 9, None
            continue
        if code < len(dic):
            e = dic[code]
        elif prev is not None and code == len(dic):
            e = dic[prev] + dic[prev][:1]
        else:
            raise ValueError("kjv: bad lzw code %d" % code)
        out += e
        if prev is not None and len(dic) < 65536:
            dic.append(dic[prev] + e[:1])
        prev = code
        if len(dic) >= (1 << nb) and nb < 16:
            nb += 1
    return bytes(out[:ulen])


def extract_kjv(root):
    """bible-kjv-text's /usr/lib/bible.data: header 'EC02Compressed Data File', then at
    0x54 three big-endian u32 (block size 65536, block count N, first offset) followed by
    N+1 block offsets in all; each block is LZW-compressed text. The text has one verse
    per line ('Ge1:1 In the beginning ...'); we make one paragraph per chapter."""
    d = open(os.path.join(root, "usr/lib/bible.data"), "rb").read()
    if not d.startswith(b"EC02"):
        raise ValueError("bible.data: bad magic")
    bsize, nblk = struct.unpack_from(">II", d, 0x54)
    offs = struct.unpack_from(">%dI" % (nblk + 1), d, 0x5C)
    text = b"".join(lzw_decode(d[offs[i]:offs[i + 1]], bsize) for i in range(nblk))
    text = norm_newlines(text.decode("latin-1"))
    paras, cur, curch = [], [], None
    for ln in text.split("\n"):
        m = re.match(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$", ln)
        if not m:
            continue  # title line
        ch = (m.group(1), m.group(2))
        if ch != curch and cur:
            paras.append(" ".join(cur))
            cur = []
        curch = ch
        cur.append(m.group(4).strip())
    if cur:
        paras.append(" ".join(cur))
    return paras


# ---------------------------------------------------------------- examples/
def take_from(paras, start, nbytes):
    """Paragraphs from the first one equal to `start`, until nbytes of text."""
    i = paras.index(start)
    out, size = [], 0
    while i < len(paras) and size < nbytes:
        out.append(paras[i])
        size += len(paras[i].encode("utf-8")) + 2
        i += 1
    return out


def write_examples(outdir, books):
    """examples/demo_corpus.txt: the start of Pride and Prejudice (~110 KB) then the start
    of Genesis in the WEB (~50 KB), both training text. examples/heldout_mobydick.txt:
    Moby Dick from 'CHAPTER 1. Loomings.' (~100 KB), held out."""
    demo = take_from(books["austen"], "PRIDE AND PREJUDICE", 110000) + \
        take_from(books["web"], "Genesis", 50000)
    held = take_from(books["mobydick"], "CHAPTER 1. Loomings.", 100000)
    for name, paras in (("demo_corpus.txt", demo), ("heldout_mobydick.txt", held)):
        n = write_paras(os.path.join(outdir, name), paras)
        print("%-21s %5d paragraphs %7d bytes" % (name, n, os.path.getsize(os.path.join(outdir, name))))


# ---------------------------------------------------------------- main
def fetch(debdir, download):
    os.makedirs(debdir, exist_ok=True)
    if download:
        missing = [p for p in PACKAGES if not glob.glob(os.path.join(debdir, p + "_*.deb"))]
        if missing:
            subprocess.run(["apt-get", "download"] + missing, cwd=debdir, check=True)
    root = tempfile.mkdtemp(prefix="probe-corpus-")
    for p in PACKAGES:
        debs = sorted(glob.glob(os.path.join(debdir, p + "_*.deb")))
        if not debs:
            sys.exit("extract_corpus: %s: no .deb in %s" % (p, debdir))
        subprocess.run(["dpkg-deb", "-x", debs[-1], root], check=True)
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/work/train/corpus")
    ap.add_argument("--debs", default="/work/train/debs")
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--no-overlap-check", action="store_true")
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"),
                    help="where demo_corpus.txt and heldout_mobydick.txt go ('' = skip)")
    a = ap.parse_args()
    root = fetch(a.debs, not a.no_download)
    os.makedirs(a.out, exist_ok=True)
    books = {}
    for name, fn in (("austen", extract_austen), ("web", extract_web),
                     ("kjv", extract_kjv), ("mobydick", extract_mobydick),
                     ("tdavid", extract_tdavid), ("mhcc", extract_mhcc), ("devil", extract_devil)):
        paras = books[name] = [p for p in (clean_para(q) for q in fn(root)) if p]
        path = os.path.join(a.out, name + ".txt")
        n = write_paras(path, paras)
        print("%-9s %6d paragraphs %9d bytes -> %s" % (name, n, os.path.getsize(path), path))
    for p in PACKAGES:
        src = os.path.join(root, "usr/share/doc", p, "copyright")
        if os.path.exists(src):
            with open(src, "rb") as f, open(os.path.join(a.out, "copyright." + p), "wb") as g:
                g.write(f.read())
    subprocess.run(["rm", "-rf", root], check=True)
    if not a.no_overlap_check:
        check_no_mobydick(books, EXTRA)
    if a.examples:
        os.makedirs(a.examples, exist_ok=True)
        write_examples(a.examples, books)


if __name__ == "__main__":
    main()
