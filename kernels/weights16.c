/* kernels/weights16.c: weights kept in 16 bits on the CPU (kernels/ops.h, "16-bit weight
 * storage").
 *
 * The model code passes weights as float pointers. For a weight stored as IEEE half or
 * bfloat16 (a file converted with --dtype f16|bf16), the runtime hands out a stand-in
 * pointer instead of a float32 copy: an address inside a range reserved with
 * PROT_NONE (so a stray read faults at once rather than reading garbage), registered
 * here with the 16-bit data behind it. A backend that supports it (cpu_fast) asks
 * samc_w16_find whether a weight operand is such a stand-in and then reads the 16-bit
 * values, converting them as it packs. The registry is shared by every model of the
 * process (the service runs several): ranges are added at load and removed at free under
 * a lock; lookups take the read side. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/ops.h"

typedef struct {
    uintptr_t begin, end;            /* stand-in bytes [begin, end) */
    const uint16_t *data;
    samc_w16_dtype dtype;
} w16_entry;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static w16_entry *entries;           /* sorted by begin, non-overlapping */
static size_t n_entries, cap_entries;

float *samc_w16_reserve(size_t n_floats) {
    size_t bytes = (n_floats ? n_floats : 1) * sizeof(float);
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void samc_w16_release(float *base, size_t n_floats) {
    if (!base) return;
    uintptr_t b = (uintptr_t)base, e = b + (n_floats ? n_floats : 1) * sizeof(float);
    pthread_rwlock_wrlock(&lock);
    size_t k = 0;
    for (size_t i = 0; i < n_entries; i++)
        if (entries[i].end <= b || entries[i].begin >= e) entries[k++] = entries[i];
    n_entries = k;
    pthread_rwlock_unlock(&lock);
    munmap(base, (n_floats ? n_floats : 1) * sizeof(float));
}

int samc_w16_register(const float *standin, size_t n, const uint16_t *data, samc_w16_dtype dtype) {
    w16_entry e = { (uintptr_t)standin, (uintptr_t)(standin + n), data, dtype };
    pthread_rwlock_wrlock(&lock);
    if (n_entries == cap_entries) {
        size_t cap = cap_entries ? 2 * cap_entries : 256;
        w16_entry *ne = realloc(entries, cap * sizeof *ne);
        if (!ne) {
            pthread_rwlock_unlock(&lock);
            return -1;
        }
        entries = ne;
        cap_entries = cap;
    }
    size_t i = n_entries;
    while (i > 0 && entries[i - 1].begin > e.begin) {
        entries[i] = entries[i - 1];
        i--;
    }
    entries[i] = e;
    n_entries++;
    pthread_rwlock_unlock(&lock);
    return 0;
}

const uint16_t *samc_w16_find(const float *p, samc_w16_dtype *dtype) {
    uintptr_t a = (uintptr_t)p;
    const uint16_t *found = NULL;
    pthread_rwlock_rdlock(&lock);
    size_t lo = 0, hi = n_entries;
    while (lo < hi) {   /* the last entry with begin <= a */
        size_t mid = (lo + hi) / 2;
        if (entries[mid].begin <= a) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && a < entries[lo - 1].end) {
        const w16_entry *e = &entries[lo - 1];
        found = e->data + (a - e->begin) / sizeof(float);
        if (dtype) *dtype = e->dtype;
    }
    pthread_rwlock_unlock(&lock);
    return found;
}
