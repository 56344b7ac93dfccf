#!/bin/sh
# Install the Debian packages distill needs to build and test.  As root it
# runs apt-get; as another user it prints the command to run.
#   .ci/deps.sh          build dependencies
#   .ci/deps.sh --ci     plus what CI uses (clang, sanitizer runtime, linters, browser)
set -eu
PKGS="build-essential cmake pkg-config libsqlite3-dev libcurl4-openssl-dev libcjson-dev libpcre2-dev \
libzstd-dev libutf8proc-dev libxxhash-dev libmicrohttpd-dev libgmp-dev libopenblas-dev zlib1g-dev sqlite3 zstd curl bc time"
if [ "${1:-}" = "--ci" ]; then
	PKGS="$PKGS clang libclang-rt-14-dev clang-format clang-tidy jq python3 chromium"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages; install them with:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
