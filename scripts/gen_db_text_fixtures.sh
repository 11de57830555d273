#!/bin/sh
# Regenerates tests/fixtures/db_text/ (used by tests/check_db_text.c):
#
#   corpus.txt  paragraphs of text that byte-level BPE and UTF-8 make hard:
#               curly quotes and emoji split over tokens, CJK, combining
#               marks, invalid bytes (a lone FF, a truncated E2 82, an
#               overlong C0 AF, a surrogate ED A0 80, F4 90 80 80 above
#               U+10FFFF, a stray 80), a NUL, and a document that ends inside
#               a character (E2 80). Written from the Python literal below.
#   v5.sqlite   that corpus recorded and ablated by probe at schema version 5
#               (before 060_text_utf8.sql): the database an older probe
#               leaves, with raw bytes in TEXT columns, for the migration
#               test. Built from the commit $PROBE_V5_COMMIT (git archive,
#               nothing in this checkout changes), with tiny-f32, from a
#               corpus path that is not UTF-8 (corpus-\xff.txt), recording
#               layer 0 only (--ctx 16 --examples 2 --top-k 1) and ablating
#               it (--ctx 16 --layers 0); then vacuumed to 1 KiB pages to keep
#               the file small. (.sqlite: *.db is ignored by git.)
#
# Run from the repository root. Needs the build dependencies and
# /usr/bin/python3. Deterministic except for timestamps and timings.
set -e
D=tests/fixtures/db_text
PROBE_V5_COMMIT=${PROBE_V5_COMMIT:-aa40bca}
mkdir -p $D
/usr/bin/python3 - "$D/corpus.txt" <<'EOF'
import sys
paragraphs = [
    "Abram\u2019s tent stood by the \u201cgreat oaks\u201d of Mamre; \u2018Here,\u2019 he said, \u2018I\u2019ll stay.\u2019".encode(),
    "Emoji \U0001F600 and \U0001F389, a thumbs-up \U0001F44D\U0001F3FD and a family "
    "\U0001F468\u200d\U0001F469\u200d\U0001F467 at the end \U0001F600".encode(),
    "CJK: \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u4e2d\u6587\u6587\u672c\u3002"
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5.".encode(),
    "Combining marks: cafe\u0301, n\u0303o, a\u0308\u0301 and Z\u0351\u0364\u0350 stacked.".encode(),
    b"Invalid bytes: lone \xff here, truncated euro \xe2\x82 there, overlong slash \xc0\xaf, "
    b"a surrogate \xed\xa0\x80 half, above max \xf4\x90\x80\x80 and a stray \x80 byte.",
    b"A NUL \x00 byte inside a document, and \xfe\xfe twice.",
    b"This document ends inside a character: \xe2\x80",
]
with open(sys.argv[1], "wb") as f:
    f.write(b"\n\n".join(paragraphs) + b"\n")
EOF

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$PROBE_V5_COMMIT" | tar -x -C "$tmp"
make -C "$tmp" -j2 >/dev/null
cp "$D/corpus.txt" "$tmp/corpus-$(printf '\377').txt"
rm -f "$D/v5.sqlite"
# from the archive's root, with relative paths, so that the stored paths do
# not depend on where this runs
(cd "$tmp" && CORPUS="corpus-$(printf '\377').txt" &&
 ./probe record "$CORPUS" --db v5.db --model tests/fixtures/models/tiny-f32 --ctx 16 --layers 0 \
     --examples 2 --top-k 1 --quiet &&
 ./probe ablate "$CORPUS" --db v5.db --model tests/fixtures/models/tiny-f32 --ctx 16 --layers 0 \
     --quiet >/dev/null)
/usr/bin/python3 - "$tmp/v5.db" "$D/v5.sqlite" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA user_version").fetchone()[0] == 5
db.execute("PRAGMA journal_mode = DELETE")
db.execute("PRAGMA page_size = 1024")
db.execute("VACUUM")
db.execute("VACUUM INTO ?", (sys.argv[2],))
EOF
ls -l "$D"
