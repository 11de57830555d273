#!/bin/sh
# Regenerates tests/fixtures/forward/: small random checkpoints in HF layout
# (scripts/make_checkpoint.py) and the float64 reference outputs of
# scripts/reference_forward.py for each intervention case. The C suite
# tests/check_forward.c compares probe's forward pass against them.
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
D=tests/fixtures/forward
rm -rf "$D" && mkdir -p "$D"

# name | generator options
$PY scripts/make_checkpoint.py --layers 3 --embd 32 --heads 4 --positions 160 --vocab 300 \
    --dtype F32 --seed 11 "$D/f32"
$PY scripts/make_checkpoint.py --layers 2 --embd 24 --heads 3 --inner 80 --positions 40 --vocab 257 \
    --dtype F16 --prefix --lm-head --act gelu --seed 12 "$D/f16-prefix-lmhead"
$PY scripts/make_checkpoint.py --layers 2 --embd 16 --heads 2 --positions 32 --vocab 200 \
    --dtype BF16 --act relu --seed 13 "$D/bf16-relu"
for m in f32 f16-prefix-lmhead bf16-relu; do rm -f "$D/$m/vocab.json" "$D/$m/merges.txt"; done

ids() { # ids N VOCAB SEED -> a JSON array of N ids
    $PY -c "import json,random; r=random.Random($3); print(json.dumps([r.randrange($2) for _ in range($1)]))"
}
ids 150 300 1 > "$D/f32/ids_long.json"   # > one attention block of 128 rows
ids 20 300 2 > "$D/f32/ids.json"
ids 33 257 3 > "$D/f16-prefix-lmhead/ids.json"
ids 32 200 4 > "$D/bf16-relu/ids.json"

ref() { # ref MODEL IDS CASE [options...]
    m=$1 i=$2 c=$3; shift 3
    $PY scripts/reference_forward.py --model "$D/$m" --ids "$D/$m/$i" --out "$D/$m/$c" "$@"
    rm -f "$D/$m/$c/ids.json"
}
ref f32 ids_long.json plain_long
for m in f32 f16-prefix-lmhead bf16-relu; do
    ref $m ids.json plain
    ref $m ids.json no_ffn --no-ffn
    ref $m ids.json no_ffn_1 --no-ffn-layers 1
    ref $m ids.json zero --zero 0:3,1:5,1:7
    ref $m ids.json set --set 0:1=1.5,1:2=-0.75
    ref $m ids.json mixed --no-ffn-layers 0 --zero 1:4 --set 1:6=2.0
done
du -sh "$D"
