/*
 * fake-safe-synthesizer: stands in for safe-synthesizer in nss-entrypoint's
 * tests. It is C, built static, so that what it reports about signals is
 * exactly what it inherited: no language runtime installs handlers first.
 *
 * It writes one JSON document to stdout (or to the file FAKE_TARGET_REPORT)
 * with its argv and environment (hex-encoded, byte for byte), pid, ppid,
 * process group, cwd, umask, signal mask, ignored, caught and pending signal
 * sets (from /proc/self/status), open descriptors and RLIMIT_NOFILE.
 *
 *   FAKE_TARGET_STDOUT=TEXT  write TEXT to stdout instead of the report
 *   FAKE_TARGET_EXIT=N       exit with status N
 *   FAKE_TARGET_WAIT=1       after reporting, print "ready" on stderr and
 *                            log each of SIGUSR1, SIGUSR2, SIGHUP, SIGINT as
 *                            "signal NAME" on stderr; SIGINT exits 130.
 *                            SIGTERM keeps its default action (143) unless
 *                            FAKE_TARGET_CATCH_TERM=1, which logs it and
 *                            exits 0.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;
static int fake_argc;
static char **fake_argv;

static void hex(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fprintf(f, "%02x", *p);
	fputc('"', f);
}

static void str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void status_field(FILE *f, const char *key, const char *name)
{
	char line[256], val[64] = "";
	FILE *st = fopen("/proc/self/status", "r");
	size_t n = strlen(name);
	if (st) {
		while (fgets(line, sizeof line, st))
			if (strncmp(line, name, n) == 0 && line[n] == ':') {
				sscanf(line + n + 1, "%63s", val);
				break;
			}
		fclose(st);
	}
	fprintf(f, ",\"%s\":", key);
	str(f, val);
}

static void report(FILE *f)
{
	char cwd[4096] = "", link[4096], path[64];
	struct rlimit rl;
	mode_t um = umask(0);
	umask(um);

	/* List descriptors first, before this function opens anything. */
	int fds[256], nfd = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) && nfd < 256) {
			int fd = atoi(de->d_name);
			if (de->d_name[0] != '.' && fd != dirfd(d))
				fds[nfd++] = fd;
		}
		closedir(d);
	}

	fputs("{\"args_hex\":[", f);
	for (int i = 0; i < fake_argc; i++) {
		if (i)
			fputc(',', f);
		hex(f, fake_argv[i]);
	}
	fputs("],\"env_hex\":[", f);
	for (char **e = environ; *e; e++) {
		if (e != environ)
			fputc(',', f);
		hex(f, *e);
	}
	fprintf(f, "],\"pid\":%d,\"ppid\":%d,\"pgid\":%d,\"uid\":%d,\"umask\":%d",
		(int)getpid(), (int)getppid(), (int)getpgrp(), (int)getuid(), (int)um);
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	fputs(",\"cwd\":", f);
	str(f, cwd);
	status_field(f, "sig_blk", "SigBlk");
	status_field(f, "sig_ign", "SigIgn");
	status_field(f, "sig_cgt", "SigCgt");
	status_field(f, "sig_pnd", "SigPnd");
	status_field(f, "shd_pnd", "ShdPnd");
	fputs(",\"fds\":{", f);
	for (int i = 0; i < nfd; i++) {
		ssize_t n;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
		n = readlink(path, link, sizeof link - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		fprintf(f, "%s\"%d\":", i ? "," : "", fds[i]);
		str(f, link);
	}
	fputc('}', f);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fprintf(f, ",\"rlimit_nofile\":[%llu,%llu]", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	/* Per-thread state that a new thread does not inherit: the exec must
	 * hand the target the main thread's. */
	int pdeath = 0;
	prctl(PR_GET_PDEATHSIG, &pdeath);
	struct sched_param sp = {0};
	sched_getparam(0, &sp);
	fprintf(f, ",\"pdeathsig\":%d,\"sched_policy\":%d,\"sched_priority\":%d,\"nice\":%d",
		pdeath, sched_getscheduler(0), sp.sched_priority, getpriority(PRIO_PROCESS, 0));
	fputs("}\n", f);
}

static volatile sig_atomic_t last;

static void on_signal(int sig) { last = sig; }

int main(int argc, char **argv)
{
	const char *v;
	fake_argc = argc;
	fake_argv = argv;

	if ((v = getenv("FAKE_TARGET_STDOUT"))) {
		fputs(v, stdout);
	} else if ((v = getenv("FAKE_TARGET_REPORT")) && *v) {
		FILE *f = fopen(v, "w");
		if (f) {
			report(f);
			fclose(f);
		}
	} else {
		report(stdout);
	}
	fflush(stdout);

	if ((v = getenv("FAKE_TARGET_WAIT")) && strcmp(v, "1") == 0) {
		int sigs[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGINT, SIGTERM};
		int catch_term = (v = getenv("FAKE_TARGET_CATCH_TERM")) && strcmp(v, "1") == 0;
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
			if (sigs[i] == SIGTERM && !catch_term)
				continue;
			struct sigaction sa;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = on_signal;
			sigaction(sigs[i], &sa, NULL);
		}
		fputs("ready\n", stderr);
		for (;;) {
			pause();
			if (last) {
				int sig = last;
				last = 0;
				fprintf(stderr, "signal %s\n", sigabbrev_np(sig));
				if (sig == SIGINT)
					return 130;
				if (sig == SIGTERM)
					return 0;
			}
		}
	}
	v = getenv("FAKE_TARGET_EXIT");
	return v ? atoi(v) : 0;
}
