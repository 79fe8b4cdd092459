#!/usr/bin/env bash
# Fails when a file of the repository cites a document that is not in it or
# names a path outside it. The protocol facts the codecs rely on are in
# docs/protocol.md; cite that.
set -euo pipefail
cd "$(dirname "$0")/.."
# Bracketed so that this line does not match itself.
pattern='wire[-]protocols|[.][.]/shared|/work[/]'
# --untracked: new files count before they are committed; ignored files
# (target/, node_modules/, venvs) do not.
if git grep --untracked -nE "$pattern"; then
	echo "check-paths: the lines above cite a document or a path outside the repository (protocol facts: docs/protocol.md)" >&2
	exit 1
fi
echo "check-paths: no reference outside the repository"
