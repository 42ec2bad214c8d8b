#!/usr/bin/env bash
# Register PneumoScan with the desktop, for this user only (no root rights).
#
#   ./install.sh              add the menu entry ~/.local/share/applications/pneumoscan.desktop
#   ./install.sh --desktop    the same, plus a double-click icon on your Desktop
#   ./install.sh --uninstall  remove both again (this folder and your user data stay)
#
# Nothing is copied: the app runs from the folder you unpacked (the PneumoScan
# folder next to this script). If you move that folder, run ./install.sh again.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA_HOME/applications"
LAUNCHER="$APPS/pneumoscan.desktop"
EXEC="$HERE/PneumoScan/PneumoScan"
ICON="$HERE/pneumoscan.png"

desktop_dir() {
    local dir=""
    command -v xdg-user-dir >/dev/null 2>&1 && dir="$(xdg-user-dir DESKTOP 2>/dev/null || true)"
    [ -n "$dir" ] && [ "$dir" != "$HOME" ] || dir="$HOME/Desktop"
    printf '%s\n' "$dir"
}

refresh() {
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$APPS" >/dev/null 2>&1 || true
    fi
}

mode="install"
case "${1:-}" in
    "") ;;
    --desktop) mode="desktop" ;;
    --uninstall) mode="uninstall" ;;
    *) echo "usage: $0 [--desktop | --uninstall]" >&2; exit 2 ;;
esac

if [ "$mode" = "uninstall" ]; then
    rm -f "$LAUNCHER" "$(desktop_dir)/pneumoscan.desktop"
    refresh
    echo "Removed the PneumoScan launcher ($LAUNCHER)."
    echo "To remove PneumoScan completely, also delete the folder $HERE"
    echo "and, if you no longer need your results and models, $DATA_HOME/PneumoScan"
    exit 0
fi

if [ ! -x "$EXEC" ]; then
    echo "PneumoScan executable not found at $EXEC" >&2
    exit 1
fi
# Desktop-entry Exec quoting (and the sed below) cannot carry these characters.
case "$HERE" in
    *'"'* | *'`'* | *'$'* | *'\'* | *'%'* | *'|'* | *$'\n'*)
        echo "Please unpack PneumoScan into a folder whose path has none of \" \` \$ \\ % | : $HERE" >&2
        exit 1 ;;
esac

write_launcher() {  # $1: destination .desktop file
    local dest="$1" tmp
    mkdir -p "$(dirname "$dest")"
    tmp="$(mktemp "$(dirname "$dest")/.pneumoscan.desktop.XXXXXX")"
    sed -e "s|@EXEC@|$EXEC|g" -e "s|@DIR@|$HERE|g" -e "s|@ICON@|$ICON|g" \
        "$HERE/pneumoscan.desktop.in" > "$tmp"
    chmod 755 "$tmp"  # launchers on the Desktop must be executable to start
    mv -f "$tmp" "$dest"
}

write_launcher "$LAUNCHER"
refresh
echo "Installed $LAUNCHER: PneumoScan is in your application menu (it may take a moment to appear)."
if [ "$mode" = "desktop" ]; then
    icon_file="$(desktop_dir)/pneumoscan.desktop"
    write_launcher "$icon_file"
    # GNOME only starts Desktop launchers marked as trusted.
    command -v gio >/dev/null 2>&1 && gio set "$icon_file" metadata::trusted true >/dev/null 2>&1 || true
    echo "Installed $icon_file: double-click it to start PneumoScan."
fi
echo "From a terminal: \"$EXEC\" [STUDY_FOLDER]"
