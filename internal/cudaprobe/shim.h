/*
 * shim.h: the CUDA driver API calls nss-gpu-probe makes, through dlopen and
 * dlsym only. Nothing here links libcuda: every function is resolved before
 * it is called, and a missing one answers NSS_CU_MISSING.
 */
#ifndef NSS_CUDA_SHIM_H
#define NSS_CUDA_SHIM_H

#include <stddef.h>

/* NSS_CU_MISSING: the library lacks the function asked for. */
#define NSS_CU_MISSING (-1000)

/* nss_cu_open loads libcuda.so.1 (or path, when not NULL). It returns 0, or
 * -1 with dlerror's message in err. */
int nss_cu_open(const char *path, char *err, size_t errlen);

/* nss_cu_has reports whether the loaded library exports name. */
int nss_cu_has(const char *name);

/* nss_cu_library writes the real path of the loaded library (dladdr on
 * cuInit, symbolic links resolved) into buf; "" when unknown. */
void nss_cu_library(char *buf, size_t len);

/* nss_nvml_library does the same for the libnvidia-ml that go-nvml loaded
 * (RTLD_GLOBAL, so its symbols are in the global scope). */
void nss_nvml_library(char *buf, size_t len);

/* nss_cu_error_name returns cuGetErrorName's name for code, or NULL when the
 * library lacks it or does not know the code; nss_cu_error_string likewise
 * for cuGetErrorString. */
const char *nss_cu_error_name(int code);
const char *nss_cu_error_string(int code);

/* Each returns the CUresult, or NSS_CU_MISSING. ns receives the time the
 * call took, in nanoseconds. */
int nss_cu_init(long long *ns);
int nss_cu_driver_version(int *version);
int nss_cu_device_count(int *count);
int nss_cu_device(int ordinal, int *device);
int nss_cu_device_name(int device, char *buf, int len);
int nss_cu_attribute(int attribute, int device, int *value);
int nss_cu_pci_bus_id(int device, char *buf, int len);

/* nss_cu_context makes a context on device (the primary context when the
 * library has cuDevicePrimaryCtxRetain, else cuCtxCreate_v2), reads
 * cuMemGetInfo and releases it. fn receives the name of the call that
 * failed. The result is the first failing CUresult, or 0. */
int nss_cu_context(int device, unsigned long long *free_bytes, unsigned long long *total_bytes,
		   long long *ns, const char **fn);

#endif
