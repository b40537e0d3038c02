/* tests/cuda_sim/sched.cpp: running one kernel launch on the host.
 *
 * Blocks run one after another, in a random order. Inside a block every thread is a fiber
 * (fiber.cpp) that runs until it reaches __syncthreads or a warp operation. The warps of a
 * block get a random priority order, drawn again at every barrier: the scheduler always
 * resumes a lane (chosen at random) of the first warp in that order that can run, so one
 * warp races as far ahead of the others as the barriers let it, which is the schedule
 * that exposes a missing barrier in either direction (a reader before the writer, or a
 * writer of the next phase before the last reader). A barrier releases when every
 * thread that has not exited stands at it (the hardware rule since Volta); a warp
 * operation completes when every lane of its mask has arrived. Shared memory is poisoned
 * with a NaN pattern before each block, and sits against a PROT_NONE page so that an index
 * past its end faults. What these catch, with the launch's name, block and thread:
 *   - a missing barrier: a reader runs before the writers of its block and sees poison;
 *   - barriers or warp operations reached from different source lines (divergence), a
 *     lane in a shuffle mask that exited or never arrives, a block that deadlocks;
 *   - shared or global memory past its end (SIGSEGV on a guard page), an out-of-bounds
 *     constant-size array index or a misaligned vector access (the -fsanitize=bounds,
 *     alignment trap), integer division by zero.
 * A fault stops the launch and leaves a sticky cudaErrorIllegalAddress (or
 * cudaErrorIllegalInstruction) with that description, as a faulting GPU would. */
#include "tests/cuda_sim/sim.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <map>
#include <vector>

CUDASIM_HIDDEN uint3 threadIdx, blockIdx;
CUDASIM_HIDDEN dim3 blockDim, gridDim;

namespace cudasim {

/* 0x7fbadbad: a NaN as a float, a large positive int as an index. */
#define POISON_WORD 0x7fbadbadu
#define CANARY_BYTE 0xcd

enum tstate { T_RUNNABLE, T_BARRIER, T_WARP, T_DONE };

struct thread_rec {
    uint3 idx;
    int linear;
    tstate st;
    bool started;
    void *sp;
    fiber_stack stack;
    site at;            /* where it waits */
    int pred, bar_result; /* pred: the kind of __syncthreads it waits at */
    void *coll;         /* its part of a warp collective */
};

struct warp_group { site at; unsigned mask, arrived; int kind; collective_fn fn; void *ctx; };
struct warp_rec { unsigned present, exited, runnable; std::vector<warp_group> groups; };

struct launch_state {
    const char *file, *name;
    int line;
    launch_cfg cfg;
    const void *key;
    body_fn body;
    void *ctx;
    std::vector<thread_rec> th;
    std::vector<warp_rec> warps;
    std::vector<int> order;        /* warp indices, highest priority first */
    int n_runnable;
    int live, at_bar, bar_count;
    site bar_site;
    thread_rec *cur;
    void *sched_sp;
    volatile bool in_fiber, aborted;
    uint64_t rng;
    char *dyn;
};
static launch_state *g_launch;

static uint64_t next_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_poison(void *p, size_t bytes) {
    uint32_t w = POISON_WORD;
    char *c = (char *)p;
    size_t i = 0;
    for (; i + 4 <= bytes; i += 4) memcpy(c + i, &w, 4);
    for (; i < bytes; i++) c[i] = (char)0xad;
}

/* ---- shared memory -------------------------------------------------------------------- */

struct smem_var { char *ptr; size_t bytes, slack; const char *file, *name; int line; };
static std::vector<smem_var> g_smem_vars;
static std::map<const void *, size_t> g_static_smem, g_dyn_limit;
static char *g_dyn_guard;      /* the page after the dynamic shared memory area */
static size_t g_dyn_cap;

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Maps `bytes` so that they end `slack` bytes before a PROT_NONE page; aborts when the
 * host is out of memory (the simulator cannot go on). */
static char *map_before_guard(size_t need, char **guard) {
    size_t pg = page_size(), span = (need + pg - 1) / pg * pg;
    char *m = (char *)mmap(NULL, span + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + span, pg, PROT_NONE) != 0) abort();
    *guard = m + span;
    return m + span - need;
}

void *shared_alloc(size_t bytes, size_t align, const char *file, int line, const char *name) {
    size_t a = align < 16 ? 16 : align, need = (bytes + a - 1) / a * a;
    char *guard;
    char *p = map_before_guard(need ? need : a, &guard);
    smem_var v = { p, bytes, (size_t)(guard - p) - bytes, file, name, line };
    fill_poison(p, bytes);
    memset(p + bytes, CANARY_BYTE, v.slack);
    g_smem_vars.push_back(v);
    if (g_launch && g_launch->key) g_static_smem[g_launch->key] += bytes;
    return p;
}

void *dynamic_shared(void) { return g_launch ? g_launch->dyn : NULL; }

size_t func_static_smem(const void *key) {
    auto it = g_static_smem.find(key);
    return it == g_static_smem.end() ? 0 : it->second;
}
size_t func_dyn_limit(const void *key) {
    auto it = key ? g_dyn_limit.find(key) : g_dyn_limit.end();
    return it == g_dyn_limit.end() ? (size_t)48 << 10 : it->second;
}
void func_set_dyn_limit(const void *key, size_t bytes) { g_dyn_limit[key] = bytes; }
void func_reset_attributes(void) { g_dyn_limit.clear(); }

static void poison_block_smem(launch_state *L) {
    for (const smem_var &v : g_smem_vars) fill_poison(v.ptr, v.bytes);
    if (L->cfg.smem) fill_poison(L->dyn, L->cfg.smem);
}

/* A write past the end of a __shared__ array that stayed inside its alignment slack. */
static int check_smem_slack(launch_state *L) {
    for (const smem_var &v : g_smem_vars)
        for (size_t i = 0; i < v.slack; i++)
            if ((unsigned char)v.ptr[v.bytes + i] != CANARY_BYTE) {
                set_sticky(cudaErrorIllegalAddress, "kernel %s (%s:%d) wrote %zu bytes past the end of __shared__ %s "
                           "(%s:%d, %zu bytes)", L->name, L->file, L->line, i + 1, v.name, v.file, v.line, v.bytes);
                memset(v.ptr + v.bytes, CANARY_BYTE, v.slack);
                return -1;
            }
    return 0;
}

/* ---- failing a launch from inside it -------------------------------------------------- */

void describe_thread(char *buf, size_t n) {
    launch_state *L = g_launch;
    if (!L || !L->cur) {
        snprintf(buf, n, "(no kernel running)");
        return;
    }
    snprintf(buf, n, "kernel %s (launched at %s:%d) block (%u,%u,%u) thread (%u,%u,%u)", L->name, L->file, L->line,
             blockIdx.x, blockIdx.y, blockIdx.z, L->cur->idx.x, L->cur->idx.y, L->cur->idx.z);
}

/* Records the error and abandons the running fiber; the scheduler sees `aborted`. */
[[noreturn]] static void abort_launch(cudaError_t code, const char *what) {
    launch_state *L = g_launch;
    char who[384];
    describe_thread(who, sizeof who);
    set_sticky(code, "%s: %s", who, what);
    L->aborted = true;
    L->in_fiber = false;
    void *dead;
    cudasim_switch(&dead, L->sched_sp);
    abort(); /* not reached: the scheduler never resumes an aborted fiber */
}

void kernel_fail(cudaError_t code, const char *what) { abort_launch(code, what); }

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void failf(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    abort_launch(cudaErrorLaunchFailure, msg);
}

/* ---- faults ---------------------------------------------------------------------------- */

static struct sigaction g_old_act[32];
static const int g_fault_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };

static void describe_fault_address(const void *a, char *buf, size_t n) {
    const char *p = (const char *)a;
    for (const smem_var &v : g_smem_vars)
        if (p >= v.ptr + v.bytes && p < v.ptr + v.bytes + v.slack + page_size()) {
            snprintf(buf, n, "past the end of __shared__ %s (%s:%d, %zu bytes)", v.name, v.file, v.line, v.bytes);
            return;
        }
    launch_state *L = g_launch;
    if (g_dyn_guard && p >= g_dyn_guard && p < g_dyn_guard + page_size()) {
        snprintf(buf, n, "past the end of the dynamic shared memory (%zu bytes at the launch)", L->cfg.smem);
        return;
    }
    if (L && L->cur && L->cur->started && p < L->cur->stack.base && p >= L->cur->stack.base - page_size()) {
        snprintf(buf, n, "the thread's stack overflowed");
        return;
    }
    describe_device_address(a, buf, n);
}

static void on_fault(int sig, siginfo_t *si, void *uctx) {
    (void)uctx;
    launch_state *L = g_launch;
    if (!L || !L->in_fiber) { /* not a simulated thread: the process's own handling */
        sigaction(sig, &g_old_act[sig], NULL);
        return;
    }
    char where[256], msg[400];
    cudaError_t code = cudaErrorIllegalAddress;
    if (sig == SIGILL) {
        code = cudaErrorIllegalInstruction;
        snprintf(msg, sizeof msg, "trap: an out-of-bounds index into a fixed-size array or a misaligned vector "
                 "access (-fsanitize=bounds,alignment), at pc %p", si->si_addr);
    } else if (sig == SIGFPE) {
        code = cudaErrorIllegalInstruction;
        snprintf(msg, sizeof msg, "integer division by zero");
    } else {
        describe_fault_address(si->si_addr, where, sizeof where);
        snprintf(msg, sizeof msg, "illegal access at %p: %s", si->si_addr, where);
    }
    abort_launch(code, msg);
}

/* Faults in a simulated thread are handled on an alternate stack (the thread's own may be
 * what overflowed) and without blocking the signal, because the handler never returns: it
 * switches back to the scheduler. */
static void install_fault_handlers(void) {
    static thread_local bool alt_ready;
    if (!alt_ready) {
        stack_t ss;
        ss.ss_size = (size_t)256 << 10;
        ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ss.ss_flags = 0;
        if (ss.ss_sp == MAP_FAILED || sigaltstack(&ss, NULL) != 0) abort();
        alt_ready = true;
    }
    for (int sig : g_fault_sigs) {
        struct sigaction sa, cur;
        sigaction(sig, NULL, &cur);
        if (cur.sa_flags & SA_SIGINFO && cur.sa_sigaction == on_fault) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, &g_old_act[sig]);
    }
}

/* ---- barriers and warp collectives ------------------------------------------------------ */

static void yield(launch_state *L) {
    L->in_fiber = false;
    cudasim_switch(&L->cur->sp, L->sched_sp);
}

static void make_runnable(launch_state *L, thread_rec *t) {
    t->st = T_RUNNABLE;
    L->warps[(size_t)t->linear / 32].runnable |= 1u << (t->linear & 31);
    L->n_runnable++;
}

static void shuffle_warp_order(launch_state *L) {
    for (size_t i = L->order.size(); i > 1; i--) std::swap(L->order[i - 1], L->order[next_rand(&L->rng) % i]);
}

/* A random runnable lane of the first warp in priority order that has one. */
static thread_rec *pick_next(launch_state *L) {
    for (int w : L->order) {
        unsigned m = L->warps[(size_t)w].runnable;
        if (!m) continue;
        int k = (int)(next_rand(&L->rng) % (uint64_t)__builtin_popcount(m));
        while (k--) m &= m - 1; /* drop the k lowest set bits */
        int lane = __builtin_ctz(m);
        L->warps[(size_t)w].runnable &= ~(1u << lane);
        L->n_runnable--;
        return &L->th[(size_t)w * 32 + (size_t)lane];
    }
    return NULL;
}

static bool same_site(site a, site b) { return a.line == b.line && (a.file == b.file || !strcmp(a.file, b.file)); }

/* Every waiting thread gets its __syncthreads_count / _and / _or result now: the next
 * barrier may begin before it runs again. */
static void release_barrier(launch_state *L) {
    int count = L->bar_count, arrived = L->at_bar;
    for (thread_rec &t : L->th)
        if (t.st == T_BARRIER) {
            t.bar_result = t.pred == BAR_COUNT ? count : t.pred == BAR_AND ? count == arrived
                         : t.pred == BAR_OR ? count > 0 : 0;
            make_runnable(L, &t);
        }
    L->at_bar = 0;
    shuffle_warp_order(L);
}

int syncthreads(site s, int kind, int pred) {
    launch_state *L = g_launch;
    thread_rec *t = L->cur;
    if (L->at_bar == 0) {
        L->bar_site = s;
        L->bar_count = 0;
    } else if (!same_site(s, L->bar_site)) {
        failf("divergent __syncthreads: this thread is at %s:%d while %d other(s) wait at %s:%d", s.file, s.line,
              L->at_bar, L->bar_site.file, L->bar_site.line);
    }
    L->bar_count += pred;
    L->at_bar++;
    t->st = T_BARRIER;
    t->at = s;
    t->pred = kind;
    if (L->at_bar == L->live) release_barrier(L);
    yield(L);
    return t->bar_result;
}

static warp_rec &warp_of(launch_state *L, thread_rec *t) { return L->warps[(size_t)t->linear / 32]; }

void warp_collective(site s, unsigned mask, int kind, void *mine, collective_fn complete, void *ctx) {
    launch_state *L = g_launch;
    thread_rec *t = L->cur;
    warp_rec &w = warp_of(L, t);
    unsigned bit = 1u << (t->linear & 31);
    if (!(mask & bit)) failf("warp operation at %s:%d with mask %08x that leaves out the calling lane %d", s.file,
                             s.line, mask, t->linear & 31);
    if (mask & ~w.present) failf("warp operation at %s:%d: mask %08x names lanes that do not exist (block of %d "
                                 "threads)", s.file, s.line, mask, (int)L->th.size());
    if (mask & w.exited) failf("warp operation at %s:%d: mask %08x names lanes that have exited (%08x)", s.file,
                               s.line, mask, mask & w.exited);
    warp_group *g = NULL;
    for (warp_group &x : w.groups)
        if (x.mask & mask) g = &x;
    if (!g) {
        w.groups.push_back(warp_group{ s, mask, 0, kind, complete, ctx });
        g = &w.groups.back();
    } else if (g->mask != mask || g->kind != kind || !same_site(g->at, s)) {
        failf("divergent warp operation: lane %d is at %s:%d (mask %08x) while lanes %08x wait at %s:%d (mask %08x)",
              t->linear & 31, s.file, s.line, mask, g->arrived, g->at.file, g->at.line, g->mask);
    }
    t->coll = mine;
    t->at = s;
    g->arrived |= bit;
    if (g->arrived != mask) {
        t->st = T_WARP;
        yield(L);
        return;
    }
    void *all[32] = { 0 };
    size_t base = (size_t)(t->linear & ~31);
    for (int l = 0; l < 32; l++)
        if (mask & (1u << l)) all[l] = L->th[base + l].coll;
    warp_group done = *g;
    w.groups.erase(w.groups.begin() + (g - w.groups.data()));
    done.fn(all, mask, done.ctx);
    for (int l = 0; l < 32; l++)
        if ((mask & (1u << l)) && base + l != (size_t)t->linear) make_runnable(L, &L->th[base + l]);
    make_runnable(L, t); /* the last to arrive goes on in a random order with the others */
    yield(L);
}

int current_lane(void) { return g_launch->cur->linear & 31; }

unsigned active_mask(void) {
    launch_state *L = g_launch;
    warp_rec &w = warp_of(L, L->cur);
    return w.present & ~w.exited;
}

static void syncwarp_done(void *const all[32], unsigned mask, void *ctx) { (void)all, (void)mask, (void)ctx; }
void syncwarp(site s, unsigned mask) { warp_collective(s, mask, COLL_SYNCWARP, NULL, syncwarp_done, NULL); }

struct shfl_part { uint64_t bits, out; int mode, arg, width; };

static void shfl_done(void *const all[32], unsigned mask, void *ctx) {
    (void)ctx;
    for (int l = 0; l < 32; l++) {
        shfl_part *p = (shfl_part *)all[l];
        if (!p) continue;
        int w = p->width, seg = l & ~(w - 1), src = l;
        if (p->mode == SHFL_IDX) src = seg + (p->arg & (w - 1));
        else if (p->mode == SHFL_UP) src = (l - seg) >= p->arg ? l - p->arg : l;
        else if (p->mode == SHFL_DOWN) src = (l - seg) + p->arg < w ? l + p->arg : l;
        else src = (l ^ p->arg) < seg + w ? l ^ p->arg : l;
        /* reading a lane outside the mask is undefined: give it poison, not a value */
        p->out = (src >= 0 && src < 32 && (mask & (1u << src))) ? ((shfl_part *)all[src])->bits
                                                                : ((uint64_t)POISON_WORD << 32 | POISON_WORD);
    }
}

uint64_t shfl(site s, unsigned mask, int mode, uint64_t bits, int arg, int width) {
    if (width < 1 || width > 32 || (width & (width - 1)))
        failf("__shfl_*_sync at %s:%d: width %d is not a power of two up to 32", s.file, s.line, width);
    shfl_part me = { bits, 0, mode, arg, width };
    warp_collective(s, mask, COLL_SHFL, &me, shfl_done, NULL);
    return me.out;
}

struct vote_part { int pred, mode; unsigned out; };

static void vote_done(void *const all[32], unsigned mask, void *ctx) {
    (void)ctx;
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if (all[l] && ((vote_part *)all[l])->pred) ballot |= 1u << l;
    for (int l = 0; l < 32; l++) {
        vote_part *p = (vote_part *)all[l];
        if (!p) continue;
        p->out = p->mode == VOTE_BALLOT ? ballot : p->mode == VOTE_ANY ? ballot != 0 : ballot == mask;
    }
}

unsigned vote(site s, unsigned mask, int mode, int pred) {
    vote_part me = { pred, mode, 0 };
    warp_collective(s, mask, COLL_VOTE, &me, vote_done, NULL);
    return me.out;
}

/* ---- threads and blocks ------------------------------------------------------------------ */

/* The end of a simulated thread: it counts as arrived at any barrier still to come. */
static void thread_exit(launch_state *L) {
    thread_rec *t = L->cur;
    warp_rec &w = warp_of(L, t);
    unsigned bit = 1u << (t->linear & 31);
    for (const warp_group &g : w.groups)
        if (g.mask & bit)
            failf("lane %d exited while lanes %08x wait for it in the warp operation at %s:%d (mask %08x)",
                  t->linear & 31, g.arrived, g.at.file, g.at.line, g.mask);
    w.exited |= bit;
    t->st = T_DONE;
    L->live--;
    if (L->live > 0 && L->at_bar == L->live) release_barrier(L);
    L->in_fiber = false;
    cudasim_switch(&t->sp, L->sched_sp);
    abort(); /* not reached */
}

static void thread_entry(void *arg) {
    launch_state *L = (launch_state *)arg;
    L->body(L->ctx);
    thread_exit(L);
}

static void block_init(launch_state *L) {
    const dim3 &b = L->cfg.block;
    int n = (int)(b.x * b.y * b.z);
    L->th.resize((size_t)n);
    L->warps.assign((size_t)(n + 31) / 32, warp_rec{ 0, 0, 0, {} });
    L->order.resize(L->warps.size());
    for (size_t w = 0; w < L->order.size(); w++) L->order[w] = (int)w;
    shuffle_warp_order(L);
    L->n_runnable = 0;
    for (int i = 0; i < n; i++) {
        thread_rec &t = L->th[(size_t)i];
        t.idx = uint3{ (unsigned)i % b.x, (unsigned)i / b.x % b.y, (unsigned)i / (b.x * b.y) };
        t.linear = i;
        t.started = false;
        t.coll = NULL;
        make_runnable(L, &t);
        L->warps[(size_t)i / 32].present |= 1u << (i & 31);
    }
    L->live = n;
    L->at_bar = 0;
}

static void release_stacks(launch_state *L) {
    for (thread_rec &t : L->th)
        if (t.started && t.st != T_DONE) {
            stack_put(t.stack);
            t.started = false;
        }
}

/* Describes who waits where when nothing can run any more. */
static void report_deadlock(launch_state *L) {
    char msg[400];
    int nb = 0, nw = 0;
    site sb = { "?", 0 }, sw = { "?", 0 };
    for (thread_rec &t : L->th) {
        if (t.st == T_BARRIER) { nb++; sb = t.at; }
        if (t.st == T_WARP) { nw++; sw = t.at; }
    }
    snprintf(msg, sizeof msg, "block (%u,%u,%u) deadlocked: %d thread(s) at __syncthreads (%s:%d), %d lane(s) in a "
             "warp operation that cannot complete (%s:%d)", blockIdx.x, blockIdx.y, blockIdx.z, nb, sb.file, sb.line,
             nw, sw.file, sw.line);
    set_sticky(cudaErrorLaunchFailure, "kernel %s (launched at %s:%d): %s", L->name, L->file, L->line, msg);
    L->aborted = true;
}

static void run_block(launch_state *L) {
    block_init(L);
    poison_block_smem(L);
    while (L->n_runnable > 0 && !L->aborted) {
        thread_rec *t = pick_next(L);
        if (!t->started) {
            t->stack = stack_get();
            fiber_init(&t->sp, t->stack, thread_entry, L);
            t->started = true;
        }
        L->cur = t;
        threadIdx = t->idx;
        L->in_fiber = true;
        cudasim_switch(&L->sched_sp, t->sp);
        L->in_fiber = false;
        if (t->st == T_DONE) {
            stack_put(t->stack);
            t->started = false;
        }
    }
    if (!L->aborted && L->live > 0) report_deadlock(L);
    if (L->aborted) release_stacks(L);
    L->cur = NULL;
}

/* ---- the launch ------------------------------------------------------------------------------ */

static void setup_dynamic_smem(launch_state *L) {
    size_t cap = config().smem_optin;
    if (!g_dyn_guard || g_dyn_cap < cap) {
        char *guard;
        map_before_guard((cap + 15) / 16 * 16, &guard);
        g_dyn_guard = guard;
        g_dyn_cap = cap;
    }
    L->dyn = g_dyn_guard - (L->cfg.smem + 15) / 16 * 16;
}

/* Visits blocks in a random order (a permutation up to 4 M blocks, a random rotation past
 * that); stops at the first fault. */
static void run_blocks(launch_state *L) {
    const dim3 &g = L->cfg.grid;
    uint64_t nb = (uint64_t)g.x * g.y * g.z;
    std::vector<uint32_t> order;
    if (nb <= ((uint64_t)4 << 20)) {
        order.resize(nb);
        for (uint64_t i = 0; i < nb; i++) order[i] = (uint32_t)i;
        for (uint64_t i = nb; i > 1; i--) std::swap(order[i - 1], order[next_rand(&L->rng) % i]);
    }
    uint64_t start = next_rand(&L->rng) % nb;
    for (uint64_t i = 0; i < nb && !L->aborted; i++) {
        uint64_t b = order.empty() ? (start + i) % nb : order[i];
        blockIdx = uint3{ (unsigned)(b % g.x), (unsigned)(b / g.x % g.y), (unsigned)(b / ((uint64_t)g.x * g.y)) };
        run_block(L);
        if (!L->aborted && check_smem_slack(L)) L->aborted = true;
    }
}

void run_launch(const char *file, int line, const launch_cfg &c, const char *name, const void *key,
                const std::shared_ptr<void> &ctx, body_fn body) {
    static uint64_t launches;
    if (sticky() != cudaSuccess) return; /* a faulted device runs nothing more */
    launch_state L;
    L.file = file;
    L.line = line;
    L.name = name;
    L.cfg = c;
    L.key = key;
    L.body = body;
    L.ctx = ctx.get();
    L.cur = NULL;
    L.in_fiber = false;
    L.aborted = false;
    L.rng = config().seed * 0x2545f4914f6cdd1dull + ++launches;
    install_fault_handlers();
    setup_dynamic_smem(&L);
    blockDim = c.block;
    gridDim = c.grid;
    launch_state *prev = g_launch;
    g_launch = &L;
    run_blocks(&L);
    g_launch = prev;
    if (!L.aborted) check_canaries(name);
}
} // namespace cudasim
