#!/usr/bin/env sh
# Put Basechat in the desktop menu: run from the unpacked Basechat folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/basechat.png" "$icons/basechat.png"
sed "s|@EXEC@|\"$here/Basechat\"|" "$here/basechat.desktop" > "$apps/basechat.desktop"
chmod +x "$apps/basechat.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "Basechat is in your applications menu ($apps/basechat.desktop)."
