/* tests/cuda_sim/fiber.cpp: the context switch under the simulated GPU threads, and their
 * stacks.
 *
 * A simulated thread runs on its own small stack until it reaches a barrier or a warp
 * operation, then switches back to the scheduler. On x86-64 the switch is ten
 * instructions (push the callee-saved registers, swap stack pointers, pop, return), about
 * a hundred times cheaper than swapcontext, which also saves the signal mask with a
 * system call; elsewhere ucontext does the same job more slowly.
 *
 * Stacks come from one mmap each with a PROT_NONE page below, so a kernel that overflows
 * its stack faults (and is reported) instead of writing into its neighbour's. */
#include "tests/cuda_sim/sim.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#define FIBER_STACK_BYTES ((size_t)128 << 10)

#if defined(__x86_64__)
/* cudasim_switch(save, to): rdi = where to store the old stack pointer, rsi = new one.
 * cudasim_fiber_start: the first "return address" of a new fiber; r12 holds the argument
 * and r13 the entry function (set by fiber_init), which must never return. */
__asm__(".text\n"
        ".globl cudasim_switch\n"
        ".hidden cudasim_switch\n"
        ".type cudasim_switch,@function\n"
        "cudasim_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size cudasim_switch, .-cudasim_switch\n"
        ".globl cudasim_fiber_start\n"
        ".hidden cudasim_fiber_start\n"
        ".type cudasim_fiber_start,@function\n"
        "cudasim_fiber_start:\n"
        "  movq %r12, %rdi\n"
        "  callq *%r13\n"
        "  ud2\n"
        ".size cudasim_fiber_start, .-cudasim_fiber_start\n");
extern "C" void cudasim_fiber_start(void);

namespace cudasim {
void fiber_init(void **sp, fiber_stack st, void (*entry)(void *), void *arg) {
    /* Frame popped by cudasim_switch: r15 r14 r13 r12 rbx rbp, then the return address.
     * After the ret, rsp must be 16-byte aligned at cudasim_fiber_start so that its call
     * leaves the entry function with the ABI's alignment. */
    uintptr_t top = ((uintptr_t)st.base + st.size) & ~(uintptr_t)15;
    void **f = (void **)(top - 72);
    f[0] = 0;                            /* r15 */
    f[1] = 0;                            /* r14 */
    f[2] = (void *)entry;                /* r13 */
    f[3] = arg;                          /* r12 */
    f[4] = 0;                            /* rbx */
    f[5] = 0;                            /* rbp */
    f[6] = (void *)cudasim_fiber_start;  /* return address */
    *sp = f;
}
} // namespace cudasim
#else
#include <ucontext.h>
/* Portable fallback: *save and `to` point at ucontext_t objects kept at the top of each
 * fiber's stack (and one for the scheduler). */
static thread_local ucontext_t g_sched_uc;

extern "C" void cudasim_switch(void **save, void *to) {
    ucontext_t *mine = *save ? (ucontext_t *)*save : &g_sched_uc;
    *save = mine;
    swapcontext(mine, (ucontext_t *)to);
}

namespace cudasim {
static void uc_entry(unsigned lo, unsigned hi, unsigned alo, unsigned ahi) {
    void (*entry)(void *) = (void (*)(void *))(((uintptr_t)hi << 32) | lo);
    entry((void *)(((uintptr_t)ahi << 32) | alo));
}
void fiber_init(void **sp, fiber_stack st, void (*entry)(void *), void *arg) {
    ucontext_t *uc = (ucontext_t *)(st.base + st.size - sizeof(ucontext_t) - 64);
    getcontext(uc);
    uc->uc_stack.ss_sp = st.base;
    uc->uc_stack.ss_size = st.size - sizeof(ucontext_t) - 128;
    uc->uc_link = NULL;
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    makecontext(uc, (void (*)())uc_entry, 4, (unsigned)e, (unsigned)(e >> 32), (unsigned)a, (unsigned)(a >> 32));
    *sp = uc;
}
} // namespace cudasim
#endif

namespace cudasim {
static std::vector<fiber_stack> g_free_stacks;

/* A stack with a guard page below it; reused across blocks and launches, so only the
 * first block of the widest launch pays for the mmap calls. Out of memory here is not a
 * CUDA error a test could expect: the simulator cannot go on, so it aborts. */
fiber_stack stack_get(void) {
    if (!g_free_stacks.empty()) {
        fiber_stack s = g_free_stacks.back();
        g_free_stacks.pop_back();
        return s;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = (char *)mmap(NULL, FIBER_STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0) abort();
    return fiber_stack{ m + page, FIBER_STACK_BYTES };
}

void stack_put(fiber_stack s) { g_free_stacks.push_back(s); }
} // namespace cudasim
