#!/usr/bin/env bash
# Check that an HTML page is well formed: every element opened is closed, in
# order (void elements excepted), and every SVG holds only SVG elements.
# Python's html.parser (stdlib) reads it; a browser would repair a missing
# </td> silently, so this catches what the screenshot cannot.
#   tests/test_report_html.sh PAGE.html
set -euo pipefail
python3 - "$1" <<'PY'
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
SVG = {"svg", "title", "rect", "line", "polyline", "circle", "text", "g"}

class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if "svg" in self.stack and tag not in SVG:
            self.errors.append(f"line {self.getpos()[0]}: <{tag}> inside an <svg>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if "svg" in self.stack and tag not in SVG:
            self.errors.append(f"line {self.getpos()[0]}: <{tag}/> inside an <svg>")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"line {self.getpos()[0]}: </{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()

c = Check()
c.feed(open(sys.argv[1], encoding="utf-8").read())
c.close()
if c.stack:
    c.errors.append("never closed: " + " ".join(f"<{t}>" for t in c.stack))
if c.errors:
    sys.exit("\n".join(c.errors[:20]))
print("well formed")
PY
