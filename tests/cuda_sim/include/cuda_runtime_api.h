/* tests/cuda_sim/include/cuda_runtime_api.h: the host API of the CUDA runtime as the
 * simulator provides it (tests/cuda_sim/runtime.cpp). Written from the CUDA Runtime API
 * reference, not copied from NVIDIA's headers: only what samc's backend, the simulator's
 * own tests and the next GPU steps use. The enum values are the real ones, so a number in
 * an error message means the same as on a GPU.
 *
 * The functions have C linkage and their real names: a test that looks up
 * "cudaEventRecord" in the loaded backend library (kernels/cuda_stub.c) finds the
 * simulator's when the simulator is loaded. */
#ifndef CUDASIM_RUNTIME_API_H
#define CUDASIM_RUNTIME_API_H
#include <stddef.h>
#include <stdint.h>

#define CUDART_VERSION 13000
#define CUDASIM_API extern "C" __attribute__((visibility("default")))

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchTimeout = 702,
    cudaErrorMisalignedAddress = 716,
    cudaErrorIllegalInstruction = 715,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureMerge = 902,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureUnjoined = 904,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorCapturedEvent = 907,
    cudaErrorUnknown = 999
} cudaError_t;

typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
} cudaMemcpyKind;

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
typedef struct CUgraphNode_st *cudaGraphNode_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaEventRecordDefault 0x00
#define cudaEventRecordExternal 0x01

typedef enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
} cudaStreamCaptureMode;

typedef enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
} cudaStreamCaptureStatus;

typedef enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9
} cudaFuncAttribute;

typedef struct cudaFuncAttributes {
    size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
    int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion, cacheModeCA;
    int maxDynamicSharedSizeBytes, preferredShmemCarveout;
} cudaFuncAttributes;

/* The fields samc and the tests read, under their real names. */
typedef struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor;
    int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3];
    int major, minor, multiProcessorCount, maxThreadsPerMultiProcessor, l2CacheSize;
    int memoryBusWidth, clockRate, memoryClockRate, integrated, concurrentKernels;
} cudaDeviceProp;

CUDASIM_API const char *cudaGetErrorString(cudaError_t e);
CUDASIM_API const char *cudaGetErrorName(cudaError_t e);
CUDASIM_API cudaError_t cudaGetLastError(void);
CUDASIM_API cudaError_t cudaPeekAtLastError(void);

CUDASIM_API cudaError_t cudaGetDeviceCount(int *count);
CUDASIM_API cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
CUDASIM_API cudaError_t cudaSetDevice(int device);
CUDASIM_API cudaError_t cudaGetDevice(int *device);
CUDASIM_API cudaError_t cudaDriverGetVersion(int *v);
CUDASIM_API cudaError_t cudaRuntimeGetVersion(int *v);
CUDASIM_API cudaError_t cudaDeviceSynchronize(void);
/* Frees every allocation, stream and kernel attribute and clears the errors, sticky ones
 * included (the simulator's tests use it to go on after a deliberate fault). */
CUDASIM_API cudaError_t cudaDeviceReset(void);
CUDASIM_API cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

CUDASIM_API cudaError_t cudaMalloc(void **p, size_t bytes);
/* Page-locked host memory: ordinary host memory here, remembered so that cudaFreeHost can
 * refuse anything else. Like cudaMalloc / cudaFree, not allowed while a stream is captured. */
CUDASIM_API cudaError_t cudaMallocHost(void **p, size_t bytes);
CUDASIM_API cudaError_t cudaFreeHost(void *p);
CUDASIM_API cudaError_t cudaFree(void *p);
CUDASIM_API cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
CUDASIM_API cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                                        cudaStream_t s);
CUDASIM_API cudaError_t cudaMemset(void *dst, int value, size_t bytes);
CUDASIM_API cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s);

CUDASIM_API cudaError_t cudaStreamCreate(cudaStream_t *s);
CUDASIM_API cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
CUDASIM_API cudaError_t cudaStreamDestroy(cudaStream_t s);
CUDASIM_API cudaError_t cudaStreamSynchronize(cudaStream_t s);
CUDASIM_API cudaError_t cudaStreamQuery(cudaStream_t s);
CUDASIM_API cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
CUDASIM_API cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
CUDASIM_API cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
CUDASIM_API cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);

CUDASIM_API cudaError_t cudaEventCreate(cudaEvent_t *e);
CUDASIM_API cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
CUDASIM_API cudaError_t cudaEventDestroy(cudaEvent_t e);
/* While s is captured, a plain record only orders the capture (it records nothing when the
 * graph runs, as in CUDA); cudaEventRecordWithFlags(.., cudaEventRecordExternal) becomes an
 * event-record node that records the event each time the graph runs. */
CUDASIM_API cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
CUDASIM_API cudaError_t cudaEventRecordWithFlags(cudaEvent_t e, cudaStream_t s, unsigned flags);
CUDASIM_API cudaError_t cudaEventSynchronize(cudaEvent_t e);
CUDASIM_API cudaError_t cudaEventQuery(cudaEvent_t e);
CUDASIM_API cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);

CUDASIM_API cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
CUDASIM_API cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph,
                                                      unsigned long long flags);
CUDASIM_API cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
CUDASIM_API cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
CUDASIM_API cudaError_t cudaGraphDestroy(cudaGraph_t graph);
CUDASIM_API cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count);

CUDASIM_API cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, const void *func);
CUDASIM_API cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value);

/* The runtime's C++ overloads that take the kernel itself. */
template <class T> inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, T *func) {
    return cudaFuncGetAttributes(attr, (const void *)func);
}
template <class T> inline cudaError_t cudaFuncSetAttribute(T *func, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)func, attr, value);
}

#endif
