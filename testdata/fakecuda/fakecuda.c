/*
 * fakecuda: a stand-in for libcuda.so.1 used by nss-entrypoint's tests.
 *
 * nss-gpu-probe loads it with dlopen("libcuda.so.1") through
 * LD_LIBRARY_PATH, the real loader path. Its behaviour is chosen at cuInit
 * time by NSS_FAKE_CUDA, a comma-separated list of settings:
 *
 *   devices=N        number of GPUs (default 1)
 *   init=CODE        cuInit returns CODE (a CUresult)
 *   count=CODE       cuDeviceGetCount returns CODE
 *   ctx=CODE         making a context (cuDevicePrimaryCtxRetain or
 *                    cuCtxCreate_v2) returns CODE, such as 2 (out of memory)
 *   hang             cuInit never returns
 *   crash            cuInit dereferences NULL (SIGSEGV)
 *   version=N        cuDriverGetVersion, 1000*major+10*minor (default 13000)
 *   cc=MAJOR.MINOR   compute capability (default 9.0)
 *   free=MIB         free memory a context sees (default 140000)
 *   ndev=N           cuDeviceGetCount succeeds with *count = N, whatever N
 *                    is (a broken library: -5, 2147483647)
 *   noterm           cuDeviceGetName and cuDeviceGetPCIBusId fill the
 *                    whole buffer and leave no terminating NUL
 *   stdout           cuInit prints a line on standard output
 *   fork=MS          cuInit forks a process that keeps the caller's
 *                    standard output and error open for MS milliseconds
 *
 * CUDA_VISIBLE_DEVICES is honoured as the real driver does for indices:
 * the list is read up to its first entry that is not a valid, unused index;
 * when it is set and leaves no device, cuInit returns CUDA_ERROR_NO_DEVICE.
 * (UUIDs are not emulated: they end the list.)
 *
 * With NSS_FAKE_CUDA_LOG set to a path, each context retain, release,
 * create and destroy appends a line to that file.
 *
 * Built with -DFAKE_CUDA_STUB every cuInit returns CUDA_ERROR_STUB_LIBRARY,
 * as the CUDA toolkit's stubs/libcuda.so does.
 *
 * Built with -DFAKE_CUDA_OLD it lacks the newer symbols (cuGetErrorName,
 * cuGetErrorString, the primary-context calls, cuCtxSetCurrent,
 * cuDeviceGetPCIBusId), like a driver from before CUDA 7.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../fakespec.h"

typedef int CUresult;
typedef int CUdevice;
typedef struct fake_ctx { int device; } *CUcontext;

#define MAX_DEVICES 16
static struct {
	int devices, visible, init, count, ctx, version, cc_major, cc_minor;
	int ndev_set, ndev, noterm;
	unsigned long long free_mib;
	int map[MAX_DEVICES]; /* CUDA ordinal -> physical index */
	int initialised;
} cfg;
static struct fake_ctx contexts[MAX_DEVICES];

static void logf_(const char *what, int device)
{
	const char *path = getenv("NSS_FAKE_CUDA_LOG");
	FILE *f;
	if (!path || !(f = fopen(path, "a")))
		return;
	fprintf(f, "%s %d\n", what, device);
	fclose(f);
}

/* visible applies CUDA_VISIBLE_DEVICES to the physical devices. */
static void visible(void)
{
	const char *v = getenv("CUDA_VISIBLE_DEVICES");
	int used[MAX_DEVICES] = {0};
	char buf[256], *tok, *save = NULL;
	cfg.visible = 0;
	if (!v) {
		for (int i = 0; i < cfg.devices; i++)
			cfg.map[cfg.visible++] = i;
		return;
	}
	strncpy(buf, v, sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long i;
		while (*tok == ' ')
			tok++;
		i = strtol(tok, &end, 10);
		if (end == tok || i < 0 || i >= cfg.devices || used[i])
			break;
		used[i] = 1;
		cfg.map[cfg.visible++] = (int)i;
	}
}

static void configure(void)
{
	const char *spec = getenv("NSS_FAKE_CUDA");
	const char *v;
	if (!spec)
		spec = "";
	memset(&cfg, 0, sizeof cfg);
	cfg.devices = 1;
	cfg.version = 13000;
	cfg.cc_major = 9;
	cfg.free_mib = 140000;
	if ((v = setting(spec, "devices")))
		cfg.devices = atoi(v);
	if (cfg.devices > MAX_DEVICES)
		cfg.devices = MAX_DEVICES;
	if ((v = setting(spec, "init")))
		cfg.init = atoi(v);
#ifdef FAKE_CUDA_STUB
	cfg.init = 34;
#endif
	if ((v = setting(spec, "count")))
		cfg.count = atoi(v);
	if ((v = setting(spec, "ctx")))
		cfg.ctx = atoi(v);
	if ((v = setting(spec, "version")))
		cfg.version = atoi(v);
	if ((v = setting(spec, "cc")))
		sscanf(v, "%d.%d", &cfg.cc_major, &cfg.cc_minor);
	if ((v = setting(spec, "free")))
		cfg.free_mib = strtoull(v, NULL, 10);
	if ((v = setting(spec, "ndev"))) {
		cfg.ndev_set = 1;
		cfg.ndev = (int)strtol(v, NULL, 10);
	}
	cfg.noterm = setting(spec, "noterm") != NULL;
	if (setting(spec, "stdout")) {
		printf("fakecuda: a library that talks on stdout\n");
		fflush(stdout);
	}
	if ((v = setting(spec, "fork")) && fork() == 0) {
		struct timespec ts = {atoi(v) / 1000, (long)(atoi(v) % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		_exit(0);
	}
	if (setting(spec, "hang"))
		for (;;)
			pause();
	if (setting(spec, "crash"))
		*(volatile int *)0 = 1;
	visible();
}

CUresult cuInit(unsigned int flags)
{
	(void)flags;
	configure();
	if (cfg.init)
		return cfg.init;
	if (cfg.visible == 0)
		return 100; /* CUDA_ERROR_NO_DEVICE */
	cfg.initialised = 1;
	return 0;
}

CUresult cuDriverGetVersion(int *v)
{
	*v = cfg.version ? cfg.version : 13000;
	return 0;
}

CUresult cuDeviceGetCount(int *n)
{
	if (!cfg.initialised)
		return 3;
	if (cfg.count)
		return cfg.count;
	*n = cfg.ndev_set ? cfg.ndev : cfg.visible;
	return 0;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	if (!cfg.initialised)
		return 3;
	if (cfg.ndev_set) {
		*d = 0; /* every ordinal of the made-up count is GPU 0 */
		return 0;
	}
	if (ordinal < 0 || ordinal >= cfg.visible)
		return 101; /* CUDA_ERROR_INVALID_DEVICE */
	*d = ordinal;
	return 0;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice d)
{
	if (d < 0 || d >= cfg.visible)
		return 101;
	if (cfg.noterm) {
		memset(name, 'A', (size_t)len);
		return 0;
	}
	snprintf(name, (size_t)len, "NVIDIA H200");
	return 0;
}

CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d)
{
	if (d < 0 || d >= cfg.visible)
		return 101;
	switch (attr) {
	case 75: *v = cfg.cc_major; return 0;
	case 76: *v = cfg.cc_minor; return 0;
	}
	return 1; /* CUDA_ERROR_INVALID_VALUE */
}

CUresult cuCtxCreate_v2(CUcontext *ctx, unsigned int flags, CUdevice d)
{
	(void)flags;
	if (d < 0 || d >= cfg.visible)
		return 101;
	if (cfg.ctx)
		return cfg.ctx;
	contexts[d].device = d;
	*ctx = &contexts[d];
	logf_("create", d);
	return 0;
}

CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	logf_("destroy", ctx->device);
	return 0;
}

CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
	*free_b = (size_t)(cfg.free_mib << 20);
	*total_b = (size_t)(143771ULL << 20);
	return 0;
}

#ifndef FAKE_CUDA_OLD
static const struct { int code; const char *name, *text; } names[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
	{35, "CUDA_ERROR_INSUFFICIENT_DRIVER", "CUDA driver version is insufficient for CUDA runtime version"},
	{46, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
	{100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{802, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
	{803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
	{804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
	{999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

CUresult cuGetErrorName(CUresult r, const char **s)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].code == r) {
			*s = names[i].name;
			return 0;
		}
	*s = NULL;
	return 1;
}

CUresult cuGetErrorString(CUresult r, const char **s)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].code == r) {
			*s = names[i].text;
			return 0;
		}
	*s = NULL;
	return 1;
}

CUresult cuDeviceGetPCIBusId(char *buf, int len, CUdevice d)
{
	if (d < 0 || d >= cfg.visible)
		return 101;
	if (cfg.noterm) {
		memset(buf, 'B', (size_t)len);
		return 0;
	}
	snprintf(buf, (size_t)len, "0000:%02X:00.0", 6 + cfg.map[d]);
	return 0;
}

static CUcontext current;
static int retained[MAX_DEVICES];

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d)
{
	if (d < 0 || d >= cfg.visible)
		return 101;
	if (cfg.ctx)
		return cfg.ctx;
	contexts[d].device = d;
	retained[d]++;
	*ctx = &contexts[d];
	logf_("retain", d);
	return 0;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
	if (d < 0 || d >= cfg.visible || retained[d] == 0)
		return 201; /* CUDA_ERROR_INVALID_CONTEXT */
	retained[d]--;
	logf_("release", d);
	return 0;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	current = ctx;
	return 0;
}
#endif
