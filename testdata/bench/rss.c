/*
 * rss: runs a program and writes its peak resident set size in KiB
 * (wait4's ru_maxrss) to descriptor 3. It is small and static so that the
 * figure is the program's own: ru_maxrss also counts the memory a process
 * had before its exec, and a child of a large parent (the Go benchmark
 * itself) starts with the parent's pages.
 *
 *   rss PROGRAM [ARG...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(3);
		execv(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return 1;
	dprintf(3, "%ld\n", ru.ru_maxrss);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
