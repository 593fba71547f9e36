#!/usr/bin/env bash
# Keeps what a fuzzing run found: merges build-fuzz/corpus/TARGET into tests/fuzz/corpus/TARGET with
# libFuzzer's -merge=1 (only inputs that add coverage to the checked-in corpus), as found-<sha1 prefix>,
# smallest first, while the corpus stays under MAX_KB (default 190) and MAX_FILES new files (default 40).
#   tests/fuzz/merge_corpus.sh TARGET [MAX_KB] [MAX_FILES]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="$1" max_kb="${2:-190}" max_files="${3:-40}"
build="${GRCNN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
fuzzer="$build/tests/fuzz/fuzz_$target"
[ -x "$fuzzer" ] || fuzzer="$build-gcc/tests/fuzz/fuzz_$target"  # built with GCC (scripts/fuzz.sh)
dest="$root/tests/fuzz/corpus/$target"
[ -x "$fuzzer" ] || { echo "merge_corpus.sh: build $fuzzer first (scripts/fuzz.sh $target 1)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/base" "$tmp/new"
for f in "$dest"/*; do case "$(basename "$f")" in crash-*) ;; *) cp "$f" "$tmp/base/" ;; esac; done
# -merge=1 writes into the first folder the inputs of the others that add features to it.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" nice -n 19 "$fuzzer" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
  -timeout=25 "$tmp/base" "$build/corpus/$target" >"$tmp/merge.log" 2>&1 || { tail -20 "$tmp/merge.log"; exit 1; }
used=$(du -sk --apparent-size "$dest" | cut -f1)
added=0
for f in $(ls -S -r "$tmp/base"); do
  [ -e "$dest/$f" ] && continue
  cmp -s "$tmp/base/$f" "$dest/$f" 2>/dev/null && continue
  name="found-$(sha1sum "$tmp/base/$f" | cut -c1-12)"
  # skip inputs whose content is already checked in under another name
  if [ -n "$(find "$dest" -type f -exec cmp -s "$tmp/base/$f" {} \; -print -quit)" ]; then continue; fi
  size_kb=$(( ($(stat -c %s "$tmp/base/$f") + 1023) / 1024 ))
  [ $((used + size_kb)) -le "$max_kb" ] || continue
  [ "$added" -lt "$max_files" ] || break
  cp "$tmp/base/$f" "$dest/$name"
  used=$((used + size_kb)) added=$((added + 1))
done
echo "merge_corpus.sh: $target: $added inputs added; corpus $(du -sk --apparent-size "$dest" | cut -f1) KB in $(ls "$dest" | wc -l) files"
