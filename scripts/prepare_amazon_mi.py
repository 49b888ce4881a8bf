#!/usr/bin/env python3
"""Amazon Musical Instruments 5-core reviews -> TSV tables for `semctr prepare`.

Input: reviews_Musical_Instruments_5.json (JSON lines, McAuley et al.; 10,261
reviews, 1,429 users, 900 items). Output, in --out DIR (default
runs/amazon-mi-src under the repository root), read by configs/amazon-mi.yaml:

  interactions.tsv  user_id, item_id, overall, timestamp   (the CTR rows)
  items.tsv         item_id, reviews                       (item text)
  users.tsv         user_id, reviews                       (user text)

Protocol (no label leakage: nothing from a CTR row -- its review text, summary
or rating -- reaches any text):

1. Sort the reviews by (unixReviewTime, reviewerID, asin): a total order, so
   the output does not depend on the file's order.
2. Text period: the earliest --text-fraction (0.3) of the sorted reviews,
   floor(0.3 * 10,261) = 3,078 reviews. They are ONLY a source of text, never
   CTR rows.
     item text of an asin: the summaries of its text-period reviews, most
       recent first (ties: reverse of the sort order), at most 8, each trimmed
       with control characters and runs of white space turned into one space,
       joined with " | "; summaries are added while the whole stays within 400
       characters (the first is cut at 400 if it alone is longer).
     user text of a reviewerID: the same over that user's text-period reviews.
   An item or user with no text-period review gets the --empty-text value
   (default: the empty string; semctr's ELEC textualisation skips an empty
   text column, so such an entity has no text and a zero LM vector).
3. CTR rows: the remaining reviews, in the sorted order, written to
   interactions.tsv as (reviewerID, asin, overall, unixReviewTime); no text.
   items.tsv / users.tsv list every item / user of the CTR rows (sorted by id).
4. The label is made by the config: overall >= 5 (the customer loved it). On
   this data overall >= 4 is 88% positive, leaving too few negatives in a
   small test split; overall >= 5 is about two thirds positive.
   semctr then splits the CTR rows by time 80/10/10 on timestamp (a stable
   sort, so ties keep this file's order).

The text period ends before the first CTR row (timestamps are days, so the
last text-period day may also hold CTR rows; the text never includes those).
Since (user, item) pairs are unique in this data, an item's text never holds
the review of the row being predicted, nor any later review.

Python 3 standard library only; deterministic (same input -> same bytes).

  python3 scripts/prepare_amazon_mi.py [--input FILE] [--out DIR]
      [--text-fraction 0.3] [--max-summaries 8] [--max-chars 400]
      [--empty-text STRING]
"""

import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_FILE = os.path.join("amazon-musical-instruments", "reviews_Musical_Instruments_5.json")

_SPACE = re.compile(r"[\s\x00-\x1f\x7f\x85\u2028\u2029]+")


def clean(s):
    """One line of text: control characters and white-space runs -> one space, trimmed."""
    return _SPACE.sub(" ", s).strip()


def cell(s):
    """A TSV cell (semctr's tsv: tab-separated, no quoting): no tab, no newline."""
    return clean(str(s))


def join_summaries(summaries, max_n, max_chars):
    """summaries: most recent first. Join with ' | ' within max_chars."""
    out, total = [], 0
    for s in summaries:
        if len(out) == max_n:
            break
        s = clean(s)
        if not s:
            continue
        add = len(s) + (3 if out else 0)
        if total + add > max_chars:
            if not out:  # a single over-long summary: cut it
                out.append(s[:max_chars].rstrip())
            break
        out.append(s)
        total += add
    return " | ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_root = os.environ.get("SEMCTR_DATA") or os.path.join(REPO, "..", "shared", "data")
    ap.add_argument("--input", default=os.path.normpath(os.path.join(data_root, DATA_FILE)),
                    help="reviews JSON lines (default: $SEMCTR_DATA or ../shared/data, then %s)" % DATA_FILE)
    ap.add_argument("--out", default=os.path.join(REPO, "runs", "amazon-mi-src"),
                    help="output folder (default: runs/amazon-mi-src under the repository root)")
    ap.add_argument("--text-fraction", type=float, default=0.3,
                    help="earliest fraction of reviews used only as text (default 0.3)")
    ap.add_argument("--max-summaries", type=int, default=8, help="summaries per entity text (default 8)")
    ap.add_argument("--max-chars", type=int, default=400, help="characters per entity text (default 400)")
    ap.add_argument("--empty-text", default="",
                    help="text of an item/user with no text-period review (default: empty)")
    a = ap.parse_args()
    if not 0.0 <= a.text_fraction < 1.0:
        ap.error("--text-fraction must be in [0, 1)")

    reviews = []
    if not os.path.isfile(a.input):
        sys.exit("%s: no such file (set SEMCTR_DATA or pass --input)" % a.input)
    with open(a.input, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                reviews.append((int(r["unixReviewTime"]), cell(r["reviewerID"]), cell(r["asin"]),
                                float(r["overall"]), r.get("summary") or ""))
            except (ValueError, KeyError, TypeError) as e:
                sys.exit("%s:%d: %s" % (a.input, ln, e))
    for t, u, i, o, _ in reviews:
        if not u or not i:
            sys.exit("%s: a review with an empty reviewerID or asin" % a.input)
    reviews.sort(key=lambda r: (r[0], r[1], r[2]))
    n_text = int(math.floor(a.text_fraction * len(reviews)))
    text_rows, ctr_rows = reviews[:n_text], reviews[n_text:]

    item_sum, user_sum = defaultdict(list), defaultdict(list)
    for t, u, i, o, s in reversed(text_rows):  # most recent first
        item_sum[i].append(s)
        user_sum[u].append(s)

    def text(summaries):
        return join_summaries(summaries, a.max_summaries, a.max_chars) or cell(a.empty_text)

    os.makedirs(a.out, exist_ok=True)

    def write(name, header, rows):
        path = os.path.join(a.out, name)
        tmp = path + ".tmp.%d" % os.getpid()
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write("\t".join(header) + "\n")
            for row in rows:
                f.write("\t".join(row) + "\n")
        os.replace(tmp, path)

    write("interactions.tsv", ["user_id", "item_id", "overall", "timestamp"],
          ((u, i, "%g" % o, str(t)) for t, u, i, o, _ in ctr_rows))
    items = sorted({r[2] for r in ctr_rows})
    users = sorted({r[1] for r in ctr_rows})
    item_text = {i: text(item_sum.get(i, [])) for i in items}
    user_text = {u: text(user_sum.get(u, [])) for u in users}
    write("items.tsv", ["item_id", "reviews"], ((i, item_text[i]) for i in items))
    write("users.tsv", ["user_id", "reviews"], ((u, user_text[u]) for u in users))

    empty = cell(a.empty_text)
    pos5 = sum(1 for r in ctr_rows if r[3] >= 5)
    print("%s: %d reviews; text period %d (to %s), CTR rows %d (overall >= 5: %d, %.1f%%)"
          % (a.input, len(reviews), n_text, text_rows[-1][0] if text_rows else "-", len(ctr_rows), pos5,
             100.0 * pos5 / max(1, len(ctr_rows))))
    print("items %d (%d without text-period reviews), users %d (%d without) -> %s"
          % (len(items), sum(1 for i in items if item_text[i] == empty), len(users),
             sum(1 for u in users if user_text[u] == empty), a.out))


if __name__ == "__main__":
    main()
