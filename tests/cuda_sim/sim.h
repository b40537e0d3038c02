/* tests/cuda_sim/sim.h: what the simulator's own files share (runtime.cpp: the device,
 * memory, streams, events, graphs and errors; sched.cpp: running a launch with fibers;
 * fiber.cpp: the context switch; blas.cpp: cuBLAS and cuBLASLt). Not seen by kernels. */
#ifndef CUDASIM_SIM_H
#define CUDASIM_SIM_H
#include "cuda_runtime.h"
#include <functional>
#include <mutex>

namespace cudasim {

/* ---- settings, read once from the environment (NOTES.md lists them) ---- */
struct settings {
    int devices;           /* SAMC_CUDA_SIM_DEVICES: 0 makes cudaGetDeviceCount fail as without a GPU */
    int cc;                /* SAMC_CUDA_SIM_SM: compute capability as 10*major+minor (90) */
    int sms;               /* SAMC_CUDA_SIM_SMS: multiprocessors (4: small grids, fast simulation) */
    size_t smem_optin;     /* SAMC_CUDA_SIM_SMEM_OPTIN: largest dynamic shared memory per block */
    size_t mem_cap;        /* SAMC_CUDA_SIM_MEM_MB: device memory that cudaMalloc may hand out */
    uint64_t seed;         /* SAMC_CUDA_SIM_SEED: scheduling and block order */
    int lt_no_algo;        /* SAMC_CUDA_SIM_LT_NO_ALGO=1: cuBLASLt's heuristic finds no algorithm */
};
const settings &config(void);

/* One lock for the whole simulated device: API calls from several host threads are
 * serialised, and a launch runs to its end under it. */
std::recursive_mutex &lock(void);

/* ---- errors ---- */
/* A launch-configuration or argument error: returned by the call and by the next
 * cudaGetLastError, then cleared (as CUDA does). */
cudaError_t set_error(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fault during execution: sticky, every later call returns it (as after a real fault). */
void set_sticky(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cudaError_t sticky(void);

/* ---- memory ---- */
/* 0 when [p, p + bytes) lies inside one live cudaMalloc block, else -1 with where it
 * points filled into why (for messages). bytes 0 checks p only. */
int device_range(const void *p, size_t bytes, char *why, size_t why_len);
/* After a launch: the bytes between each block's size and its 256-byte-rounded end
 * must still hold the canary. Returns 0, or -1 (sticky error set, naming the kernel). */
int check_canaries(const char *kernel);
/* What an address is, for a fault message: past the end of a cudaMalloc block, inside a
 * freed one, or no device memory at all. */
void describe_device_address(const void *a, char *buf, size_t n);

/* ---- streams ---- */
/* Runs op now in stream order, or appends it to the graph being captured on s. Returns
 * the capture errors CUDA returns (an operation CUDA forbids during capture invalidates
 * it). what names the operation for messages. */
cudaError_t submit(cudaStream_t s, std::function<void()> op, const char *what);
/* The capture rules for a synchronous call on s (cudaMemcpy, cudaStreamSynchronize):
 * cudaSuccess, or the error (and the capture is invalidated). */
cudaError_t sync_allowed(cudaStream_t s, const char *what);
int stream_valid(cudaStream_t s);

/* ---- launches (sched.cpp) ---- */
void run_launch(const char *file, int line, const launch_cfg &c, const char *name, const void *key,
                const std::shared_ptr<void> &ctx, body_fn body);
/* The largest dynamic shared memory a kernel may launch with (cudaFuncSetAttribute). */
size_t func_dyn_limit(const void *key);
void func_set_dyn_limit(const void *key, size_t bytes);
void func_reset_attributes(void);
size_t func_static_smem(const void *key);

/* ---- warp collectives (sched.cpp, declared in cudasim.h for mma.h) ---- */
enum { COLL_SYNCWARP = 1, COLL_SHFL, COLL_VOTE };
int current_lane(void);
/* Names the running thread for messages: "kernel K (file:line) block (x,y,z) thread (x,y,z)". */
void describe_thread(char *buf, size_t n);

/* ---- fibers (fiber.cpp) ---- */
struct fiber_stack { char *base; size_t size; };
fiber_stack stack_get(void);
void stack_put(fiber_stack s);
/* Prepares a stack so that switching to *sp runs entry(arg) on it. */
void fiber_init(void **sp, fiber_stack st, void (*entry)(void *), void *arg);
} // namespace cudasim

/* Saves the callee-saved registers on the current stack, stores its pointer in *save and
 * continues on the stack `to` (fiber.cpp). */
extern "C" void cudasim_switch(void **save, void *to);

#endif
