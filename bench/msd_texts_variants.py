#!/usr/bin/env python3
"""Text variants for MSD from one `semctr extract` folder, to separate what the
teacher adds from what its input already says (docs/msd.md, "Extracted texts
from a larger teacher"):

  input-only   each entity's text is the first line of its prompt: the input
               the teacher saw (an item's title, date and genres; a user's
               profile and last 10 watched titles), no answer
  with-input   that line, then the extracted fields (fallbacks unchanged)

    python3 bench/msd_texts_variants.py EXTRACT_DIR OUT_DIR

Reads EXTRACT_DIR/{item,user}.prompts.tsv (key, attempt, prompt with the chat
template, newlines escaped as \\n) and {item,user}.tsv; writes
OUT_DIR/input-only/ and OUT_DIR/with-input/, each with item.tsv and user.tsv
for `semctr train --method msd --msd-texts DIR`.
"""
import os, sys

USER_TURN = {"<|im_start|>user\\n", "<start_of_turn>user\\n", "<|start_header_id|>user<|end_header_id|>\\n\\n"}


def first_input_line(prompt, where):
    for marker in USER_TURN:
        if marker in prompt:
            return prompt.split(marker, 1)[1].split("\\n", 1)[0]
    sys.exit("%s: no user turn of a known chat template in the prompt" % where)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1:]
    for variant in ("input-only", "with-input"):
        os.makedirs(os.path.join(dst, variant), exist_ok=True)
    for entity in ("item", "user"):
        prompts = os.path.join(src, entity + ".prompts.tsv")
        if not os.path.exists(prompts):
            continue
        given = {}
        with open(prompts, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                key, _, prompt = line.rstrip("\n").split("\t", 2)
                given.setdefault(key, first_input_line(prompt, "%s:%d" % (prompts, n)))
        with open(os.path.join(src, entity + ".tsv"), encoding="utf-8") as f:
            header, *rows = f.read().splitlines()
        with open(os.path.join(dst, "input-only", entity + ".tsv"), "w", encoding="utf-8") as f:
            f.write(header + "\n" + "".join("%s\tok\t%s\n" % (k, t) for k, t in given.items()))
        with open(os.path.join(dst, "with-input", entity + ".tsv"), "w", encoding="utf-8") as f:
            f.write(header + "\n")
            for row in rows:
                key, status, text = row.split("\t", 2)
                f.write("%s\t%s\t%s\n" % (key, status, given[key] + "\\n" + text if status == "ok" else text))


if __name__ == "__main__":
    main()
