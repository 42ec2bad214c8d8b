#!/usr/bin/env bash
# Pack the PyInstaller bundle into a double-clickable Linux tarball.
#
#   bash packaging/linux/pack.sh      (run by `make installer` after PyInstaller)
#
# Reads   dist/PneumoScan/            (the one-folder bundle)
# Writes  dist/PneumoScan-<version>-linux-<arch>.tar.gz containing
#   PneumoScan-<version>-linux-<arch>/
#     PneumoScan/PneumoScan     the app (double-click it, or use the menu entry)
#     install.sh                adds the menu entry (~/.local/share/applications)
#     pneumoscan.desktop.in     launcher template that install.sh fills in
#     pneumoscan.png            icon
#     README.txt
# DIST_DIR overrides dist/ (tests). The version comes from pyproject.toml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
HERE="$ROOT/packaging/linux"
DIST="${DIST_DIR:-$ROOT/dist}"
BUNDLE="$DIST/PneumoScan"

if [ ! -x "$BUNDLE/PneumoScan" ]; then
    echo "pack.sh: no bundle at $BUNDLE (run: make installer)" >&2
    exit 1
fi

# The [project] table's version in pyproject.toml: the single source.
VERSION="$(awk '
    /^\[/ { in_project = ($0 == "[project]") }
    in_project && /^version[ \t]*=/ { gsub(/^version[ \t]*=[ \t]*"|"[ \t]*$/, ""); print; exit }
' "$ROOT/pyproject.toml")"
if [ -z "$VERSION" ]; then
    echo "pack.sh: cannot read the version from $ROOT/pyproject.toml" >&2
    exit 1
fi
ARCH="$(uname -m)"
NAME="PneumoScan-$VERSION-linux-$ARCH"
OUT="$DIST/$NAME.tar.gz"

# Staged next to the bundle so that the (large) bundle can be hard-linked, not
# copied; `cp -a` keeps the bundle's own symbolic links as links.
STAGE="$(mktemp -d "$DIST/.pack.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
mkdir "$STAGE/$NAME"
cp -al "$BUNDLE" "$STAGE/$NAME/PneumoScan" 2>/dev/null || {
    rm -rf "$STAGE/$NAME/PneumoScan"
    cp -a "$BUNDLE" "$STAGE/$NAME/PneumoScan"
}
install -m 755 "$HERE/install.sh" "$STAGE/$NAME/install.sh"
install -m 644 "$HERE/pneumoscan.desktop.in" "$STAGE/$NAME/pneumoscan.desktop.in"
install -m 644 "$ROOT/resources/icons/pneumoscan.png" "$STAGE/$NAME/pneumoscan.png"
cat > "$STAGE/$NAME/README.txt" <<TXT
PneumoScan $VERSION for Linux ($ARCH)
Research use only. Not a medical device; not for diagnosis.

Start:      double-click PneumoScan/PneumoScan, or run it from a terminal:
              ./PneumoScan/PneumoScan [STUDY_FOLDER]
Menu entry: ./install.sh   (adds ~/.local/share/applications/pneumoscan.desktop;
            run it again if you move this folder)
Remove:     ./install.sh --uninstall, then delete this folder, and delete
            ~/.local/share/PneumoScan if you no longer need your results and models.

On first launch PneumoScan opens a small sample study (12 chest X-rays,
Kermany et al. 2018, CC BY 4.0). Qt needs the usual X11/Wayland libraries
(libxcb-cursor0, libxkbcommon-x11-0, libegl1, libfontconfig1 on Debian/Ubuntu).
TXT

COMPRESS="gzip"
command -v pigz >/dev/null 2>&1 && COMPRESS="pigz"
rm -f "$OUT"
# Owner and group are normalised: the archive does not carry the builder's ids.
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner \
    -I "$COMPRESS" -cf "$OUT.part" "$NAME"
mv -f "$OUT.part" "$OUT"
echo "pack.sh: wrote $OUT ($(du -h "$OUT" | cut -f1))"
