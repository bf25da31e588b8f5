#!/usr/bin/env python3
"""Hit rates of CLOCK (as node/cache.c: a hit sets the entry's reference bit, a new entry starts
with it clear, the hand clears set bits and evicts the first clear one) against LRU, for uniform
and Zipf(1.1) ids over a random ranking, cold misses included. Usage: cache-policy-sim.py
[IDS] [REQUESTS] [SEED]; defaults 10^5 ids, 10^6 requests."""
import bisect
import collections
import itertools
import random
import sys

ids = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
reqs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)


def stream(law):
    if law == "uniform":
        return [rng.randrange(ids) for _ in range(reqs)]
    rank = list(range(ids))
    rng.shuffle(rank)
    cum = list(itertools.accumulate(1.0 / (k + 1) ** 1.1 for k in range(ids)))
    return [rank[min(bisect.bisect_left(cum, rng.random() * cum[-1]), ids - 1)] for _ in range(reqs)]


def lru(seq, cap):
    c, hits = collections.OrderedDict(), 0
    for k in seq:
        if k in c:
            hits += 1
            c.move_to_end(k)
        else:
            if len(c) >= cap:
                c.popitem(last=False)
            c[k] = 1
    return hits / len(seq)


def clock(seq, cap):
    slot, keys, bit, hand, hits = {}, [None] * cap, [0] * cap, 0, 0
    n = 0
    for k in seq:
        i = slot.get(k)
        if i is not None:
            hits += 1
            bit[i] = 1
            continue
        if n < cap:
            i, n = n, n + 1
        else:
            while bit[hand]:
                bit[hand] = 0
                hand = (hand + 1) % cap
            i = hand
            del slot[keys[i]]
            hand = (hand + 1) % cap
        keys[i], bit[i], slot[k] = k, 0, i
    return hits / len(seq)


print(f"{'law':9} {'cache holds':>11} {'LRU':>6} {'CLOCK':>6}")
for law in ("uniform", "zipf"):
    seq = stream(law)
    for frac in (0.10, 0.25, 0.50, 0.90):
        cap = int(ids * frac)
        print(f"{law:9} {frac:>10.0%} {lru(seq, cap):>6.3f} {clock(seq, cap):>6.3f}")
