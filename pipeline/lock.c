/* lock.c - flock on <db>.lock (see lock.h). */
#include "lock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct lock {
	int fd;
};

int lock_open(struct lock **out, const char *db_path, struct derr *e)
{
	char path[PATH_MAX], pid[32];
	struct lock *l;
	int fd, n;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s.lock", db_path) >= (int)sizeof(path))
		return derr_set(e, DERR_INVALID, "%s: path too long", db_path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return derr_set(e, DERR_IO, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		char holder[32] = "";
		ssize_t r = pread(fd, holder, sizeof(holder) - 1, 0);
		close(fd);
		if (err != EWOULDBLOCK)
			return derr_set(e, DERR_IO, "%s: flock: %s", path, strerror(err));
		holder[r > 0 ? r : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		return derr_set(e, DERR_LOCKED, "another refresh holds %s%s%s", path,
				holder[0] ? " (pid " : "", holder[0] ? holder : "");
	}
	/* The holder's pid, for the message above; informative only. */
	n = snprintf(pid, sizeof(pid), "%ld)\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
		(void)0;
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	*out = l;
	return 0;
}

void lock_close(struct lock *l)
{
	if (!l)
		return;
	if (ftruncate(l->fd, 0) != 0)
		(void)0;
	close(l->fd); /* closing drops the flock */
	free(l);
}
