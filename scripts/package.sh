#!/usr/bin/env bash
# Builds the Debian package dfm_<version>_<arch>.deb (docs/deploy.md):
#   scripts/package.sh [--build-dir build/release] [--out DIR]
# from the release build (made first when missing): /usr/bin/dfm, the unit,
# the production configuration, the nginx site, the docs. Depends: what
# dpkg-shlibdeps finds the binary needs (Debian's runtime libraries).
# The test suite packages its own build (tests/integration/deploy_test.py).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
out=.
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: scripts/package.sh [--build-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ "$build" = build/release ] && [ ! -x build/release/app/dfm ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target dfm -j "$(nproc)"
fi
[ -x "$build/app/dfm" ] || { echo "no dfm binary in $build/app" >&2; exit 2; }
version=$(sed -n 's/^project(dfm VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
scratch=$(mktemp -d)
trap 'rm -rf "$stage" "$scratch"' EXIT

install -D -m 0755 "$build/app/dfm" "$stage/usr/bin/dfm"
if [ "$build" = build/release ]; then strip --strip-unneeded "$stage/usr/bin/dfm"; fi
install -D -m 0644 packaging/dfm.toml "$stage/etc/dfm/dfm.toml"
install -D -m 0644 packaging/dfm.service "$stage/lib/systemd/system/dfm.service"
install -D -m 0644 packaging/nginx-dfm.conf "$stage/etc/nginx/sites-available/dfm"
install -d -m 0755 "$stage/usr/share/doc/dfm"
install -m 0644 docs/deploy.md docs/backup.md "$stage/usr/share/doc/dfm/"
install -m 0644 packaging/copyright "$stage/usr/share/doc/dfm/copyright"

mkdir -p "$scratch/debian"
touch "$scratch/debian/control"
deps=$(cd "$scratch" && dpkg-shlibdeps -O "$stage/usr/bin/dfm" 2>/dev/null |
       sed -n 's/^shlibs:Depends=//p')
[ -n "$deps" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 2; }

mkdir -p "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
printf '/etc/dfm/dfm.toml\n/etc/nginx/sites-available/dfm\n' > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: dfm
Version: $version
Architecture: $arch
Maintainer: DF-Middleware <dfm@localhost>
Installed-Size: $size
Depends: $deps, adduser
Recommends: nginx
Section: net
Priority: optional
Description: DF-Middleware sync engine
 Keeps a CRM, a dialer, texting platforms and more in agreement: every
 webhook verified and made durable in an event log before it is
 acknowledged, then synced to every other system.
CONTROL
mkdir -p "$out"
deb="$out/dfm_${version}_${arch}.deb"
# xz for the release package; a test build (hundreds of MB with its
# sanitizers) is packed fast instead.
if [ "$build" = build/release ]; then zip=(-Zxz); else zip=(-Zgzip -z1); fi
dpkg-deb --root-owner-group "${zip[@]}" --build "$stage" "$deb" >/dev/null
echo "$deb"
