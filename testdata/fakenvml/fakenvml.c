/*
 * fakenvml: a stand-in for libnvidia-ml.so.1 used by nss-entrypoint's tests.
 *
 * nss-gpu-probe loads it through the real dlopen path (LD_LIBRARY_PATH or
 * NSS_NVML_LIBRARY). Its behaviour is chosen at nvmlInit time by the
 * environment variable NSS_FAKE_NVML, a comma-separated list of settings:
 *
 *   devices=N        number of GPUs (default 1)
 *   init=CODE        nvmlInit returns CODE (an nvmlReturn_t)
 *   count=CODE       nvmlDeviceGetCount returns CODE
 *   handle=CODE      nvmlDeviceGetHandleByIndex returns CODE
 *   hang             nvmlInit never returns
 *   crash            nvmlInit dereferences NULL (SIGSEGV)
 *   abort            nvmlInit calls abort() (SIGABRT)
 *   garbage          nvmlInit writes non-JSON to stdout and exits 0
 *   chatter          nvmlInit writes a line of its own to stdout and goes on
 *   cc=MAJOR.MINOR   compute capability (default 9.0)
 *   cuda=N           CUDA driver version, 1000*major+10*minor (default 13000)
 *   driver=VERSION   driver version string (default 580.159.04)
 *   procs=N          compute processes on every GPU (default 0)
 *   used=MIB         memory used on every GPU (default 0)
 *   mig              MIG mode enabled, with 2 MIG devices per GPU
 *   migdevices=N     MIG devices per GPU when MIG is enabled (default 2)
 *   persistence=0    persistence mode disabled (default enabled)
 *
 * Hardware health (--diagnose), the same on every GPU:
 *
 *   retired_pending  retired pages wait for a reset
 *   remap_pending    remapped rows wait for a reset
 *   remap_failed     a row remapping failed
 *   ecc=N            volatile uncorrectable ECC errors (default 0)
 *   clocks=MASK      clock-event reason bits (strtoull base 0; default 0)
 *   pcie=G/MG/W/MW   PCIe generation, maximum, width, maximum (default 5/5/16/16)
 *   fabric=S[/R]     GPU fabric state S (0-3) and status R (default: not supported)
 *   compute_mode=N   0 default, 2 prohibited, 3 exclusive process
 *   nohealth         the health calls answer NOT_SUPPORTED (a consumer GPU)
 *
 * Built with -DFAKE_NVML_OLD it exports only the oldest core symbols
 * (nvmlInit, nvmlShutdown, nvmlErrorString, nvmlDeviceGetCount,
 * nvmlDeviceGetHandleByIndex, nvmlDeviceGetName, nvmlSystemGetDriverVersion),
 * like a driver from long before the functions the probe asks for.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../fakespec.h"

typedef int nvmlReturn_t;
typedef struct fake_device { unsigned int index; } *nvmlDevice_t;

#define MAX_DEVICES 16
static struct fake_device devices[MAX_DEVICES];
static struct {
	unsigned int devices;
	int init, count, handle;
	int cc_major, cc_minor, cuda, procs, mig, mig_devices, persistence;
	unsigned long long used_mib;
	int retired_pending, remap_pending, remap_failed, fabric_state, fabric_status, compute_mode, nohealth;
	unsigned long long ecc, clocks;
	unsigned int pcie[4];
	char driver[64];
} cfg;

static void configure(void)
{
	const char *spec = getenv("NSS_FAKE_NVML");
	const char *v;
	if (!spec)
		spec = "";
	memset(&cfg, 0, sizeof cfg);
	cfg.devices = 1;
	cfg.cc_major = 9;
	cfg.cuda = 13000;
	strcpy(cfg.driver, "580.159.04");
	if ((v = setting(spec, "devices")))
		cfg.devices = (unsigned int)atoi(v);
	if (cfg.devices > MAX_DEVICES)
		cfg.devices = MAX_DEVICES;
	if ((v = setting(spec, "init")))
		cfg.init = atoi(v);
	if ((v = setting(spec, "count")))
		cfg.count = atoi(v);
	if ((v = setting(spec, "handle")))
		cfg.handle = atoi(v);
	if ((v = setting(spec, "cc")))
		sscanf(v, "%d.%d", &cfg.cc_major, &cfg.cc_minor);
	if ((v = setting(spec, "cuda")))
		cfg.cuda = atoi(v);
	if ((v = setting(spec, "procs")))
		cfg.procs = atoi(v);
	if ((v = setting(spec, "used")))
		cfg.used_mib = strtoull(v, NULL, 10);
	if ((v = setting(spec, "driver"))) {
		size_t n = strcspn(v, ",");
		if (n >= sizeof cfg.driver)
			n = sizeof cfg.driver - 1;
		memcpy(cfg.driver, v, n);
		cfg.driver[n] = '\0';
	}
	cfg.mig = setting(spec, "mig") != NULL;
	cfg.mig_devices = 2;
	if ((v = setting(spec, "migdevices")))
		cfg.mig_devices = atoi(v);
	cfg.persistence = 1;
	if ((v = setting(spec, "persistence")))
		cfg.persistence = atoi(v);
	cfg.retired_pending = setting(spec, "retired_pending") != NULL;
	cfg.remap_pending = setting(spec, "remap_pending") != NULL;
	cfg.remap_failed = setting(spec, "remap_failed") != NULL;
	cfg.nohealth = setting(spec, "nohealth") != NULL;
	if ((v = setting(spec, "ecc")))
		cfg.ecc = strtoull(v, NULL, 10);
	if ((v = setting(spec, "clocks")))
		cfg.clocks = strtoull(v, NULL, 0);
	cfg.pcie[0] = cfg.pcie[1] = 5;
	cfg.pcie[2] = cfg.pcie[3] = 16;
	if ((v = setting(spec, "pcie")))
		sscanf(v, "%u/%u/%u/%u", &cfg.pcie[0], &cfg.pcie[1], &cfg.pcie[2], &cfg.pcie[3]);
	if ((v = setting(spec, "fabric")))
		sscanf(v, "%d/%d", &cfg.fabric_state, &cfg.fabric_status);
	if ((v = setting(spec, "compute_mode")))
		cfg.compute_mode = atoi(v);
	if (setting(spec, "hang"))
		for (;;)
			pause();
	if (setting(spec, "crash"))
		*(volatile int *)0 = 1;
	if (setting(spec, "abort"))
		abort();
	if (setting(spec, "chatter")) {
		fputs("fakenvml: a message a driver library printed on stdout\n", stdout);
		fflush(stdout);
	}
	if (setting(spec, "garbage")) {
		fputs("this is not json\n", stdout);
		fflush(stdout);
		_exit(0);
	}
}

static void copy_string(char *dst, unsigned int len, const char *src)
{
	if (len == 0)
		return;
	strncpy(dst, src, len - 1);
	dst[len - 1] = '\0';
}

nvmlReturn_t nvmlInit(void) { configure(); return cfg.init; }
nvmlReturn_t nvmlShutdown(void) { return 0; }

const char *nvmlErrorString(nvmlReturn_t r)
{
	switch (r) {
	case 0: return "Success";
	case 4: return "Insufficient Permissions";
	case 9: return "Driver Not Loaded";
	case 12: return "NVML Shared Library Not Found";
	case 15: return "GPU is lost";
	case 18: return "RM has detected an NVML/RM version mismatch.";
	case 999: return "Unknown Error";
	default: return "Fake NVML error";
	}
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *n)
{
	if (cfg.count)
		return cfg.count;
	*n = cfg.devices;
	return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d)
{
	if (cfg.handle)
		return cfg.handle;
	if (i >= cfg.devices)
		return 2;
	devices[i].index = i;
	*d = &devices[i];
	return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len)
{
	(void)d;
	copy_string(name, len, "NVIDIA H200");
	return 0;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len)
{
	copy_string(v, len, cfg.driver);
	return 0;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlInit_v2(void) { return nvmlInit(); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) { return nvmlDeviceGetCount(n); }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) { return nvmlDeviceGetHandleByIndex(i, d); }

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { *v = cfg.cuda; return 0; }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = cfg.cuda; return 0; }

nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len)
{
	char buf[80];
	snprintf(buf, sizeof buf, "%d.%s", cfg.cuda / 1000, cfg.driver);
	copy_string(v, len, buf);
	return 0;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len)
{
	char buf[64];
	snprintf(buf, sizeof buf, "GPU-fa4e0000-0000-4000-8000-%012x", d->index);
	copy_string(uuid, len, buf);
	return 0;
}

typedef struct {
	char busIdLegacy[16];
	unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
	memset(pci, 0, sizeof *pci);
	pci->bus = 6 + d->index;
	snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
	snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
	return 0;
}

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
	(void)d;
	m->total = 143771ULL << 20;
	m->used = cfg.used_mib << 20;
	m->free = m->total - m->used;
	return 0;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor)
{
	(void)d;
	*major = cfg.cc_major;
	*minor = cfg.cc_minor;
	return 0;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending)
{
	(void)d;
	*current = *pending = cfg.mig ? 1 : 0;
	return 0;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *n)
{
	(void)d;
	*n = cfg.mig ? 7 : 0;
	return 0;
}

static struct fake_device mig_devices[2];

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int i, nvmlDevice_t *mig)
{
	(void)d;
	if (!cfg.mig || i >= (unsigned int)cfg.mig_devices || i >= 2)
		return 6; /* NOT_FOUND */
	*mig = &mig_devices[i];
	return 0;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, int *mode)
{
	(void)d;
	*mode = cfg.persistence;
	return 0;
}

typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
	unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos)
{
	(void)d;
	if (*count < (unsigned int)cfg.procs) {
		*count = (unsigned int)cfg.procs;
		return 7; /* INSUFFICIENT_SIZE */
	}
	for (int i = 0; i < cfg.procs; i++) {
		infos[i].pid = 1000 + (unsigned int)i;
		infos[i].usedGpuMemory = 1ULL << 30;
		infos[i].gpuInstanceId = infos[i].computeInstanceId = 0xFFFFFFFF;
	}
	*count = (unsigned int)cfg.procs;
	return 0;
}

/* Hardware health. NOT_SUPPORTED is 3. */
#define HEALTH(d) do { (void)(d); if (cfg.nohealth) return 3; } while (0)

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int *pending)
{
	HEALTH(d);
	*pending = cfg.retired_pending;
	return 0;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc, unsigned int *pending, unsigned int *failed)
{
	HEALTH(d);
	*corr = 0;
	*unc = cfg.remap_pending || cfg.remap_failed;
	*pending = (unsigned int)cfg.remap_pending;
	*failed = (unsigned int)cfg.remap_failed;
	return 0;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter, unsigned long long *n)
{
	HEALTH(d);
	/* Only volatile (0) uncorrected (1) errors are counted here. */
	*n = (type == 1 && counter == 0) ? cfg.ecc : 0;
	return 0;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *r)
{
	HEALTH(d);
	*r = cfg.clocks;
	return 0;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *r)
{
	return nvmlDeviceGetCurrentClocksEventReasons(d, r);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned int *v) { HEALTH(d); *v = cfg.pcie[0]; return 0; }
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int *v) { HEALTH(d); *v = cfg.pcie[1]; return 0; }
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned int *v) { HEALTH(d); *v = cfg.pcie[2]; return 0; }
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int *v) { HEALTH(d); *v = cfg.pcie[3]; return 0; }

typedef struct {
	unsigned char clusterUuid[16];
	nvmlReturn_t status;
	unsigned int cliqueId;
	unsigned char state;
} nvmlGpuFabricInfo_t;

nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t d, nvmlGpuFabricInfo_t *fi)
{
	HEALTH(d);
	memset(fi, 0, sizeof *fi);
	fi->state = (unsigned char)cfg.fabric_state;
	fi->status = cfg.fabric_status;
	return 0;
}

nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t d, int *mode)
{
	HEALTH(d);
	*mode = cfg.compute_mode;
	return 0;
}
#endif
