#!/usr/bin/env bash
# Makes the ignored tools folder (.tools) a link to a per-user cache when it
# does not exist yet, so a fresh clone on the same machine (CI clones anew
# for every run) reuses the Alertmanager, kube-apiserver, Weaviate, Ollama
# and Helm binaries an earlier clone built instead of spending minutes on
# them again. An existing .tools folder, or MEDIC_TOOLS_DIR, is left alone.
set -euo pipefail
tools_dir=${1:?usage: link-cache.sh TOOLS_DIR CACHE_DIR}
cache_dir=${2:?usage: link-cache.sh TOOLS_DIR CACHE_DIR}
if [ -e "$tools_dir" ] || [ -L "$tools_dir" ]; then
  exit 0
fi
mkdir -p "$cache_dir"
ln -s "$cache_dir" "$tools_dir"
echo "tools: $tools_dir -> $cache_dir (shared between clones)" >&2
