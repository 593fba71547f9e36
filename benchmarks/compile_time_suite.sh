#!/usr/bin/env bash
# The whole build's compile time against an earlier commit: every C++ translation unit of the configured
# build (tests, examples, benchmarks), compiled from this checkout and from a worktree of BASE with the
# build's own command line (ninja -t commands; no ccache), the two side by side on the two cores so the
# machine's drift hits both alike. Prints each unit's seconds and ratio, then the totals.
#   benchmarks/compile_time_suite.sh BASE [BUILD_DIR] [FILTER]   e.g. 5a34df8 build 'test_model'
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${1:?usage: compile_time_suite.sh BASE [BUILD_DIR] [FILTER]}"
build="$(cd "${2:-$root/build}" && pwd)"
filter="${3:-.}"
[ -f "$build/build.ninja" ] || { echo "compile_time_suite: $build is not a configured Ninja build" >&2; exit 1; }
work="$(mktemp -d)"
git -C "$root" worktree add --detach "$work/base" "$base" >/dev/null 2>&1 ||
  { echo "compile_time_suite: cannot check out '$base'" >&2; exit 1; }
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1; rm -rf "$work"' EXIT

# A unit's command with this checkout's paths replaced by those of tree $1 and its output sent to $2.
command_for() {
  ninja -C "$build" -t commands "$3" | tail -1 |
    sed -e 's#^[^ ]*ccache ##' -e "s#$root/#$1/#g" -e 's# -MD -MT [^ ]* -MF [^ ]*##' -e "s# -o [^ ]* # -o $2 #"
}
timed() {  # seconds taken by a command line run in $build; "fail" if it does not compile
  local s e
  s=$(date +%s.%N)
  (cd "$build" && eval "$1") >/dev/null 2>&1 || { echo fail; return; }
  e=$(date +%s.%N)
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.1f", b - a }'
}

total_base=0 total_head=0
printf '%-44s %8s %8s %6s\n' "translation unit" "$base" "HEAD" "ratio"
for obj in $(ninja -C "$build" -t targets all | sed -n 's/^\([^:]*\.cpp\.o\): .*CXX_COMPILER.*/\1/p' | grep -E "^(tests|examples|benchmarks)/" |
             grep -v "/fuzz/" | grep -E -- "$filter"); do
  src=$(ninja -C "$build" -t commands "$obj" | tail -1 | sed 's#.* -c ##')
  rel="${src#"$root"/}"
  if [ ! -f "$work/base/$rel" ]; then
    printf '%-44s %8s %8s\n' "$(basename "$obj" .o)" "-" "new"
    continue
  fi
  tb="$work/tb" th="$work/th"
  timed "$(command_for "$work/base" "$work/b.o" "$obj")" > "$tb" &
  timed "$(command_for "$root" "$work/h.o" "$obj")" > "$th" &
  wait
  b=$(cat "$tb") h=$(cat "$th")
  if [ "$b" = fail ] || [ "$h" = fail ]; then
    printf '%-44s %8s %8s\n' "$(basename "$obj" .o)" "$b" "$h"
    continue
  fi
  total_base=$(awk -v a="$total_base" -v b="$b" 'BEGIN { print a + b }')
  total_head=$(awk -v a="$total_head" -v b="$h" 'BEGIN { print a + b }')
  printf '%-44s %8.1f %8.1f %6.2f\n' "$(basename "$obj" .o)" "$b" "$h" "$(awk -v a="$b" -v b="$h" 'BEGIN { print b / a }')"
done
printf '%-44s %8.1f %8.1f %6.2f   (units present in both; g++ %s, the build'"'"'s flags)\n' "total" "$total_base" "$total_head" \
  "$(awk -v a="$total_base" -v b="$total_head" 'BEGIN { print (a > 0 ? b / a : 0) }')" "$(g++ -dumpfullversion)"
