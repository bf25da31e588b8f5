/* Tiles of the Merkle tree (storage_int.h): where a node lives, and the row encoding.
 *
 * Tile (T, j) covers tree levels 6T .. 6T+5. Its level d (0..5) holds the nodes
 * j * (64 >> d) .. (j + 1) * (64 >> d) - 1 of tree level 6T + d; in memory they sit at slots
 * off(d) = 128 - (128 >> d) (0, 64, 96, 112, 120, 124). A node is complete, and so present, iff
 * its position within its level is below m >> d, m being the bottom nodes the tile holds: the
 * tree only grows to the right, so completeness is a prefix at every level. */
#include "storage/storage_int.h"

#include <string.h>

static unsigned tile_off(unsigned d) {
  return 128u - (128u >> d);
}

void store_tile_locate(unsigned level, uint64_t index, unsigned *tl, uint64_t *tj, unsigned *d,
                       unsigned *slot) {
  unsigned dd = level % TILE_H;
  uint64_t j = index >> (TILE_H - dd);
  *tl = level / TILE_H;
  *tj = j;
  *d = dd;
  *slot = tile_off(dd) + (unsigned)(index - (j << (TILE_H - dd)));
}

void store_tile_set(store_tile_t *t, unsigned d, unsigned slot, const uint8_t h[SJ_HASH_LEN]) {
  memcpy(t->h[slot], h, SJ_HASH_LEN);
  if (d == 0) /* bottom nodes arrive in order: this one is the last */
    t->m = slot + 1;
}

int store_tile_get(const store_tile_t *t, unsigned d, unsigned slot, uint8_t out[SJ_HASH_LEN]) {
  if (slot - tile_off(d) >= (t->m >> d))
    return store_corrupt("tree node missing from its tile");
  memcpy(out, t->h[slot], SJ_HASH_LEN);
  return 0;
}

size_t store_tile_encode(const store_tile_t *t, uint8_t *out) {
  size_t n = 1;
  out[0] = (uint8_t)t->m;
  for (unsigned d = 0; d < TILE_H; d++) {
    size_t c = (size_t)(t->m >> d) * SJ_HASH_LEN;
    memcpy(out + n, t->h[tile_off(d)], c);
    n += c;
  }
  return n;
}

/* Rows come from disk: the length must be exactly what m implies. */
int store_tile_decode(const uint8_t *v, size_t n, uint64_t index, store_tile_t *t) {
  size_t want = 1;
  if (n < 1 || v[0] == 0 || v[0] > TILE_W)
    return store_corrupt("tile row count");
  unsigned m = v[0];
  for (unsigned d = 0; d < TILE_H; d++)
    want += (size_t)(m >> d) * SJ_HASH_LEN;
  if (n != want)
    return store_corrupt("tile row length");
  t->index = index;
  t->m = m;
  size_t p = 1;
  for (unsigned d = 0; d < TILE_H; d++) {
    size_t c = (size_t)(m >> d) * SJ_HASH_LEN;
    memcpy(t->h[tile_off(d)], v + p, c);
    p += c;
  }
  return 0;
}
