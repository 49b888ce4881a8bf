#!/usr/bin/env python3
"""Turn semctr model files into fuzz/fuzz_modelfile.c's input form:
[flags u8][H u16 LE][H bytes of header JSON][data section].
usage: python3 fuzz/modelfile_seed.py OUT_DIR FILE.model ...

The seeds in fuzz/corpus/modelfile are lr, deepfm, dcn and autoint models
(--embed-dim 4 --hidden 8,8, one epoch) of a 200-row synthetic dataset with a
categorical, a numeric and a multi-valued field: a few KB each, so the fuzzer
spends its time in the loader, not in copying weights."""
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for path in sys.argv[2:]:
    b = open(path, 'rb').read()
    if b[:8] != b'SCTRMODL':
        sys.exit(f'{path}: not a semctr model file')
    version, = struct.unpack_from('<I', b, 8)
    hlen, = struct.unpack_from('<Q', b, 16)
    if hlen > 0xFFFF:
        sys.exit(f'{path}: header of {hlen} bytes, the fuzz form takes at most 65535')
    start = (24 + hlen + 63) // 64 * 64
    seed = bytes([1 if version == 1 else 0]) + struct.pack('<H', hlen) + b[24:24 + hlen] + b[start:len(b) - 16]
    name = os.path.join(out, os.path.basename(path).replace('.model', '') + '.seed')
    open(name, 'wb').write(seed)
    print(name, len(seed))
