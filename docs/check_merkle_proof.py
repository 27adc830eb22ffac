"""Check a viss-bridge Merkle inclusion proof with nothing but the Python standard library.

    python3 check_merkle_proof.py proofs/node-1-000000002.json

Run it in the unzipped evidence container. It recomputes the record hash from
the record file, follows the RFC 9162 audit path to the root, and compares the
root with the one in the proof and in the (separately signature-checked) seal.
"""

import hashlib
import json
import re
import sys


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def main(path: str) -> int:
    proof = json.load(open(path))
    record = open(proof["record"], "rb").read()
    message = open(proof["message"], "rb").read()
    meta = json.loads(record)
    ok = hashlib.sha256(message).hexdigest() == meta["body_sha256"]
    print("message bytes match the record:", ok)
    leaf_hash = h(record)
    ok &= leaf_hash.hex() == proof["record_hash"]
    # RFC 9162 section 2.1.3.2
    fn, sn = proof["leaf_index"], proof["tree_size"] - 1
    r = h(b"\x00" + leaf_hash)
    for p in (bytes.fromhex(x) for x in proof["audit_path"]):
        if sn == 0:
            ok = False
            break
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    seal = open(proof["seal"], encoding="utf-8").read()
    seal_root = re.search(r"<vb:MerkleRoot[^>]*>([0-9a-f]{64})<", seal).group(1)
    first = int(re.search(r"<vb:FirstSeq>(\d+)<", seal).group(1))
    last = int(re.search(r"<vb:LastSeq>(\d+)<", seal).group(1))
    ok &= sn == 0 and r.hex() == proof["merkle_root"] == seal_root
    ok &= first + proof["leaf_index"] == meta["seq"] and last - first + 1 == proof["tree_size"]
    print(f"record {meta['node']}/{meta['seq']} is leaf {proof['leaf_index'] + 1} of {proof['tree_size']} "
          f"under the seal's Merkle root {seal_root[:16]}...:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
