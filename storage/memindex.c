/* The in-memory index: a region's newest index rows, held in a hash table until they are written
 * to the subjects / trace families in one sorted bulk (batch.c seals them, ingest.c writes them).
 *
 * Why: index keys (enterprises, lots) fall at random places of the key space. Written one commit
 * at a time, each row costs RocksDB a full skiplist search in a memtable of ~10^6 rows, cache miss
 * after cache miss: ~10 us of CPU per row here, several times the cost of the entry row itself
 * (docs/STORAGE.md). Sorted in bulks of tens of thousands, consecutive rows land next to each
 * other and the memtable inserts them almost sequentially. The rows are not lost on a crash: every
 * entry's header holds its keys, and the region's index watermark says from which entry on they
 * must be derived again at open (tree.c). */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NONE UINT32_MAX

void store_memidx_init(store_memidx_t *m) {
  memset(m, 0, sizeof *m);
}

void store_memidx_free(store_memidx_t *m) {
  free(m->rows);
  free(m->keys);
  free(m->vals);
  free(m->bucket);
  store_memidx_init(m);
}

void store_memidx_clear(store_memidx_t *m) {
  m->n = 0;
  m->kn = 0;
  m->vn = 0;
  if (m->bucket != NULL)
    memset(m->bucket, 0xFF, (size_t)m->nbucket * sizeof *m->bucket);
}

static uint32_t key_hash(uint8_t cf, const uint8_t *k, size_t n) {
  return (uint32_t)XXH3_64bits_withSeed(k, n, cf);
}

/* Rebuilds the bucket array for nbucket buckets (a power of two). */
static int rehash(store_memidx_t *m, uint32_t nbucket) {
  uint32_t *b = malloc((size_t)nbucket * sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  memset(b, 0xFF, (size_t)nbucket * sizeof *b);
  for (uint32_t i = 0; i < m->n; i++) {
    uint32_t slot = m->rows[i].hash & (nbucket - 1);
    m->rows[i].next = b[slot];
    b[slot] = i;
  }
  free(m->bucket);
  m->bucket = b;
  m->nbucket = nbucket;
  return 0;
}

/* Room for more bytes in an arena of *cap bytes, n used. */
static int arena_reserve(uint8_t **p, size_t *cap, size_t n, size_t more, size_t first) {
  if (*cap - n >= more)
    return 0;
  size_t c = *cap ? *cap : first;
  while (c - n < more)
    c *= 2;
  uint8_t *q = realloc(*p, c);
  if (q == NULL)
    return -ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

int store_memidx_reserve(store_memidx_t *m, size_t rows, size_t bytes, size_t vbytes) {
  if (rows > NONE / 4 - m->n || bytes > UINT32_MAX - m->kn || vbytes > UINT32_MAX - m->vn)
    return -ENOMEM;
  if (m->cap - m->n < rows) {
    uint32_t cap = m->cap ? m->cap : 256;
    while (cap - m->n < rows)
      cap *= 2;
    memidx_row_t *r = realloc(m->rows, (size_t)cap * sizeof *r);
    if (r == NULL)
      return -ENOMEM;
    m->rows = r;
    m->cap = cap;
  }
  if (arena_reserve(&m->keys, &m->kcap, m->kn, bytes, 4096) != 0 ||
      arena_reserve(&m->vals, &m->vcap, m->vn, vbytes, 65536) != 0)
    return -ENOMEM;
  if (m->nbucket < 2 * m->cap) /* load factor <= 1/2 once the rows are there */
    return rehash(m, 2 * m->cap);
  return 0;
}

uint32_t store_memidx_add_value(store_memidx_t *m, const uint8_t *v, size_t n) {
  uint32_t off = m->vn;
  memcpy(m->vals + off, v, n);
  m->vn += (uint32_t)n;
  return off;
}

void store_memidx_add(store_memidx_t *m, uint8_t cf, const uint8_t *ikey, size_t klen, uint64_t seq,
                      uint64_t time_ms, uint32_t voff, uint32_t vlen) {
  memidx_row_t *r = &m->rows[m->n];
  r->hash = key_hash(cf, ikey, klen);
  r->seq = seq;
  r->time_ms = time_ms;
  r->koff = m->kn;
  r->voff = voff;
  r->vlen = vlen;
  r->klen = (uint16_t)klen;
  r->cf = cf;
  memcpy(m->keys + m->kn, ikey, klen);
  m->kn += klen;
  uint32_t slot = r->hash & (m->nbucket - 1);
  r->next = m->bucket[slot];
  m->bucket[slot] = m->n++;
}

void store_memidx_find(const store_memidx_t *m, uint8_t cf, const uint8_t *ikey, size_t klen,
                       store_memidx_fn fn, void *ctx) {
  if (m->n == 0)
    return;
  uint32_t h = key_hash(cf, ikey, klen);
  for (uint32_t i = m->bucket[h & (m->nbucket - 1)]; i != NONE; i = m->rows[i].next) {
    const memidx_row_t *r = &m->rows[i];
    if (r->hash == h && r->cf == cf && r->klen == klen &&
        memcmp(m->keys + r->koff, ikey, klen) == 0)
      fn(ctx, r->seq, r->time_ms, m->vals + r->voff, r->vlen);
  }
}

size_t store_memidx_rows(const store_memidx_t *m, store_row_t *v) {
  for (uint32_t i = 0; i < m->n; i++)
    v[i] = (store_row_t){m->keys + m->rows[i].koff, m->rows[i].seq,  m->vals + m->rows[i].voff,
                         m->rows[i].vlen,           m->rows[i].klen, m->rows[i].cf};
  return m->n;
}

void store_region_retire_frozen(store_region_t *r) {
  store_memidx_clear(&r->frozen);
  store_memidx_free(&r->idle);
  r->idle = r->frozen;
  store_memidx_init(&r->frozen);
}
