#!/usr/bin/env bash
# Render an HTML page in headless Chromium and check the screenshot is not
# blank: the PNG is decoded with Python's zlib (stdlib only) and must show
# many distinct colours over a good share of non-white pixels (a page whose
# SVG failed to render is white with some black text: few colours).
#   tests/test_report_render.sh PAGE.html OUT.png
# Exit 0: rendered and not blank; 77: Chromium is absent (skip); else failed.
set -euo pipefail
page="$1" png="$2"
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
  echo "no chromium on PATH (Debian package 'chromium'; scripts/install_deps.sh installs it)"
  exit 77
fi
rm -f "$png"
# a fresh profile each time: a shared one is locked by a concurrent run
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size=1400,2000 --screenshot="$png" "file://$(realpath "$page")" \
  >"$profile/log" 2>&1 || { cat "$profile/log"; echo "chromium failed"; exit 1; }
[ -s "$png" ] || { cat "$profile/log"; echo "chromium wrote no screenshot"; exit 1; }
python3 - "$png" <<'PY'
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unexpected PNG format {depth} {ctype} {interlace}"
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, non_white, i = set(), 0, 0
for y in range(h):
    f = raw[i]
    line = bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):  # undo the PNG row filter
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, stride, bpp * 2):  # every other pixel: plenty, and twice as fast
        px = bytes(line[x:x + 3])
        colours.add(px)
        non_white += px != b"\xff\xff\xff"
share = non_white / (h * ((w + 1) // 2))
print(f"{w}x{h}: {len(colours)} distinct colours, {share:.1%} of pixels not white")
if len(colours) < 64 or share < 0.03:
    sys.exit("the screenshot looks blank")
PY
