#!/bin/sh
# Seeds fuzz/corpus/ from the repository's fixtures, so the fuzzers start from
# real lists, sums files and manifests rather than from nothing. Safe to rerun:
# it only adds files. Run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../fixtures"
corpus="$here/corpus"
mkdir -p "$corpus/list" "$corpus/sums" "$corpus/manifest" "$corpus/naming"

cp "$fixtures"/lists/*.txt "$corpus/list/"
cp "$fixtures/SHA256SUMS" "$corpus/sums/"

# manifest: input is SNAPSHOT NUL JOURNAL, or one file alone (see the target).
cp "$fixtures"/manifests/*.json "$corpus/manifest/"
journal="$corpus/manifest/journal-lines"
grep '^    {' "$fixtures/manifests/golden.json" | sed 's/^    //; s/,$//' >"$journal"
{ cat "$fixtures/manifests/golden.json"; printf '\0'; cat "$journal"; } >"$corpus/manifest/snapshot-and-journal"

# naming: URL-PATH NUL DIR NUL OUT (see the target).
printf 'a/b/file.tar.gz' >"$corpus/naming/plain"
printf '%%2e%%2e%%2fetc%%2fpasswd\0sub/dir\0' >"$corpus/naming/traversal-url"
printf 'http://h/x/\0./a//b/\0x/y/name.iso' >"$corpus/naming/dir-and-out"
printf 'f\0..\0../../x' >"$corpus/naming/parent-dirs"
