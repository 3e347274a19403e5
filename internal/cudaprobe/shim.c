/*
 * shim.c: see shim.h. The CUDA types are declared here by value (CUresult
 * and CUdevice are int, a context is a pointer), so no CUDA header is needed
 * to build the probe.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;

static void *lib;

static void *sym(const char *name)
{
	if (!lib)
		return NULL;
	return dlsym(lib, name);
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void copy(char *dst, size_t len, const char *src)
{
	if (len == 0)
		return;
	strncpy(dst, src, len - 1);
	dst[len - 1] = '\0';
}

int nss_cu_open(const char *path, char *err, size_t errlen)
{
	dlerror();
	lib = dlopen(path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		copy(err, errlen, e ? e : "dlopen failed");
		return -1;
	}
	return 0;
}

int nss_cu_has(const char *name)
{
	return sym(name) != NULL;
}

static void library_of(void *addr, char *buf, size_t len)
{
	Dl_info info;
	char real[PATH_MAX];
	copy(buf, len, "");
	if (!addr || !dladdr(addr, &info) || !info.dli_fname)
		return;
	if (realpath(info.dli_fname, real))
		copy(buf, len, real);
	else
		copy(buf, len, info.dli_fname);
}

void nss_cu_library(char *buf, size_t len)
{
	library_of(sym("cuInit"), buf, len);
}

void nss_nvml_library(char *buf, size_t len)
{
	void *addr = dlsym(RTLD_DEFAULT, "nvmlInit_v2");
	if (!addr)
		addr = dlsym(RTLD_DEFAULT, "nvmlInit");
	library_of(addr, buf, len);
}

const char *nss_cu_error_name(int code)
{
	CUresult (*f)(CUresult, const char **) = (CUresult(*)(CUresult, const char **))sym("cuGetErrorName");
	const char *s = NULL;
	if (!f || f(code, &s) != 0)
		return NULL;
	return s;
}

const char *nss_cu_error_string(int code)
{
	CUresult (*f)(CUresult, const char **) = (CUresult(*)(CUresult, const char **))sym("cuGetErrorString");
	const char *s = NULL;
	if (!f || f(code, &s) != 0)
		return NULL;
	return s;
}

int nss_cu_init(long long *ns)
{
	CUresult (*f)(unsigned int) = (CUresult(*)(unsigned int))sym("cuInit");
	long long start;
	CUresult r;
	if (!f)
		return NSS_CU_MISSING;
	start = now_ns();
	r = f(0);
	*ns = now_ns() - start;
	return r;
}

int nss_cu_driver_version(int *version)
{
	CUresult (*f)(int *) = (CUresult(*)(int *))sym("cuDriverGetVersion");
	return f ? f(version) : NSS_CU_MISSING;
}

int nss_cu_device_count(int *count)
{
	CUresult (*f)(int *) = (CUresult(*)(int *))sym("cuDeviceGetCount");
	return f ? f(count) : NSS_CU_MISSING;
}

int nss_cu_device(int ordinal, int *device)
{
	CUresult (*f)(CUdevice *, int) = (CUresult(*)(CUdevice *, int))sym("cuDeviceGet");
	return f ? f(device, ordinal) : NSS_CU_MISSING;
}

/* terminate ends a string a library filled: it may leave no NUL. */
static int terminate(int r, char *buf, int len)
{
	if (len > 0)
		buf[len - 1] = '\0';
	return r;
}

int nss_cu_device_name(int device, char *buf, int len)
{
	CUresult (*f)(char *, int, CUdevice) = (CUresult(*)(char *, int, CUdevice))sym("cuDeviceGetName");
	return f ? terminate(f(buf, len, device), buf, len) : NSS_CU_MISSING;
}

int nss_cu_attribute(int attribute, int device, int *value)
{
	CUresult (*f)(int *, int, CUdevice) = (CUresult(*)(int *, int, CUdevice))sym("cuDeviceGetAttribute");
	return f ? f(value, attribute, device) : NSS_CU_MISSING;
}

int nss_cu_pci_bus_id(int device, char *buf, int len)
{
	CUresult (*f)(char *, int, CUdevice) = (CUresult(*)(char *, int, CUdevice))sym("cuDeviceGetPCIBusId");
	return f ? terminate(f(buf, len, device), buf, len) : NSS_CU_MISSING;
}

int nss_cu_context(int device, unsigned long long *free_bytes, unsigned long long *total_bytes,
		   long long *ns, const char **fn)
{
	CUresult (*retain)(CUcontext *, CUdevice) = (CUresult(*)(CUcontext *, CUdevice))sym("cuDevicePrimaryCtxRetain");
	CUresult (*release)(CUdevice) = (CUresult(*)(CUdevice))sym("cuDevicePrimaryCtxRelease_v2");
	CUresult (*set)(CUcontext) = (CUresult(*)(CUcontext))sym("cuCtxSetCurrent");
	CUresult (*create)(CUcontext *, unsigned int, CUdevice) = (CUresult(*)(CUcontext *, unsigned int, CUdevice))sym("cuCtxCreate_v2");
	CUresult (*destroy)(CUcontext) = (CUresult(*)(CUcontext))sym("cuCtxDestroy_v2");
	CUresult (*meminfo)(size_t *, size_t *) = (CUresult(*)(size_t *, size_t *))sym("cuMemGetInfo_v2");
	CUcontext ctx = NULL;
	size_t free_b = 0, total_b = 0;
	long long start = now_ns();
	CUresult r, r2;
	int primary;

	if (!release)
		release = (CUresult(*)(CUdevice))sym("cuDevicePrimaryCtxRelease");
	primary = retain && release && set;
	if (!primary && !(create && destroy)) {
		*fn = "cuDevicePrimaryCtxRetain";
		return NSS_CU_MISSING;
	}
	if (primary) {
		*fn = "cuDevicePrimaryCtxRetain";
		r = retain(&ctx, device);
		if (r == 0) {
			*fn = "cuCtxSetCurrent";
			r = set(ctx);
		}
	} else {
		*fn = "cuCtxCreate_v2";
		r = create(&ctx, 0, device);
	}
	if (r == 0) {
		if (meminfo) {
			*fn = "cuMemGetInfo_v2";
			r = meminfo(&free_b, &total_b);
		} else {
			*fn = "cuMemGetInfo_v2";
			r = NSS_CU_MISSING;
		}
	}
	if (ctx) {
		if (primary) {
			if (set)
				set(NULL);
			r2 = release(device);
		} else {
			r2 = destroy(ctx);
		}
		if (r == 0 && r2 != 0) {
			*fn = primary ? "cuDevicePrimaryCtxRelease" : "cuCtxDestroy_v2";
			r = r2;
		}
	}
	*free_bytes = free_b;
	*total_bytes = total_b;
	*ns = now_ns() - start;
	return r;
}
