#!/bin/sh
# download_gpt2.sh [NAME] [DIR] — fetch a GPT-2 checkpoint's four files
# (config.json, model.safetensors, vocab.json, merges.txt) from the Hugging
# Face hub, for users with internet access. Not run in CI.
#   sh scripts/download_gpt2.sh openai-community/gpt2 models/gpt2
set -e
NAME=${1:-openai-community/gpt2}
DIR=${2:-models/$(basename "$NAME")}
mkdir -p "$DIR"
for f in config.json model.safetensors vocab.json merges.txt; do
    echo "fetching $NAME/$f"
    curl -fL --retry 3 -o "$DIR/$f.part" "https://huggingface.co/$NAME/resolve/main/$f"
    mv "$DIR/$f.part" "$DIR/$f"
done
echo "done: ./probe info --model $DIR"
