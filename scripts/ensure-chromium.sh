#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work offline).
set -euo pipefail
EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf  # the cards' thumbs are emoji
command -v chromium >/dev/null && [ -e "$EMOJI_FONT" ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "chromium is missing and there is no root/sudo to install it: apt-get install chromium" >&2; exit 0; }
  SUDO=sudo
fi
echo "installing Debian chromium for the browser tests"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null
