#!/bin/sh
# Regenerates tests/fixtures/ablate/expected_*.json with the independent
# float64 reference (scripts/ablate_reference.py) on the tiny random F32
# checkpoint. Deterministic; run from the repository root.
set -e
R="/usr/bin/python3 scripts/ablate_reference.py --model tests/fixtures/models/tiny-f32 --tokens"
D=tests/fixtures/ablate
NEURONS=0:3,0:17,0:64,1:5,1:100,1:127
# one window of ids (library test)
$R --ids $D/ids.json --no-ffn > $D/expected_ids_no_ffn.json
$R --ids $D/ids.json --layers 1 > $D/expected_ids_layers.json
$R --ids $D/ids.json --neurons $NEURONS > $D/expected_ids_neurons.json
$R --ids $D/ids.json --sweep-layers > $D/expected_ids_sweep.json
# a corpus in windows of 24 tokens (end-to-end test of the command)
$R --corpus $D/corpus.txt --ctx 24 --no-ffn > $D/expected_corpus_no_ffn.json
$R --corpus $D/corpus.txt --ctx 24 --layers 0 > $D/expected_corpus_layers.json
$R --corpus $D/corpus.txt --ctx 24 --neurons $NEURONS > $D/expected_corpus_neurons.json
$R --corpus $D/corpus.txt --ctx 24 --sweep-layers > $D/expected_corpus_sweep.json
$R --corpus $D/corpus.txt --ctx 24 --no-bos --layers 1 > $D/expected_corpus_nobos.json
# mean mode: neuron means over the corpus as `probe record --ctx 24` records
# them (means.json; check_ablate puts them into a database as a recorded run)
$R --corpus $D/corpus.txt --ctx 24 --neurons $NEURONS --mode mean --means corpus --dump-means $D/means.json > $D/expected_corpus_mean_neurons.json
$R --corpus $D/corpus.txt --ctx 24 --sweep-layers --mode mean --means $D/means.json > $D/expected_corpus_mean_sweep.json
