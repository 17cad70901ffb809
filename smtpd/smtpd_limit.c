/*
 * smtpd_limit.c - connection counts shared by every smtpd process, for
 * limits.connections and limits.connections_per_client.
 *
 * A file under private/ is mapped by all smtpd processes: one row per
 * process, each with a total and per-address counts hashed into buckets.
 * A process writes only its own row, so no locking is needed to count;
 * readers add up all rows (a hash collision can only over-count). A row
 * is claimed with a fcntl lock on its byte, which the kernel drops when
 * the process dies, so a crashed process's counts are reset by whoever
 * claims the row next and never leak.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"

/*
 * Rows: smtpd.processes is at most 64, and processes draining after a
 * reload keep their rows for up to an hour, so several generations fit.
 */
#define LIMIT_ROWS	256
#define LIMIT_BUCKETS	4096

struct limit_row {
	uint32_t	total;
	uint32_t	bucket[LIMIT_BUCKETS];
};

static struct limit_row *limit_rows;	/* LIMIT_ROWS, shared */
static struct limit_row *limit_mine;

static uint32_t limit_hash(const struct sockaddr_storage *);

void
smtpd_limit_init(const struct cfg *cfg)
{
	char path[4096];
	struct flock fl;
	size_t size = sizeof(struct limit_row) * LIMIT_ROWS;
	void *p;
	int fd, i;

	if (snprintf(path, sizeof(path), "%s/private/connections",
	    cfg->queue_directory) >= (int)sizeof(path))
		log_fatal("connection table: path too long");
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		log_fatal("open %s: %m", path);
	if (ftruncate(fd, (off_t)(size + LIMIT_ROWS)) == -1)
		log_fatal("ftruncate %s: %m", path);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		log_fatal("mmap %s: %m", path);
	limit_rows = p;
	/* Claim a free row: its lock byte sits after the table. */
	for (i = 0; i < LIMIT_ROWS; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)(size + (size_t)i);
		fl.l_len = 1;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			break;
		if (errno != EACCES && errno != EAGAIN)
			log_fatal("lock %s: %m", path);
	}
	if (i == LIMIT_ROWS)
		log_fatal("%s: no free row (more than %d smtpd processes?)",
		    path, LIMIT_ROWS);
	/* The descriptor stays open: closing it would drop the lock. */
	limit_mine = &limit_rows[i];
	memset(limit_mine, 0, sizeof(*limit_mine));
}

static uint32_t
limit_hash(const struct sockaddr_storage *sa)
{
	const unsigned char *p;
	size_t n;
	uint32_t h = 2166136261u;

	if (sa->ss_family == AF_INET6) {
		p = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		n = 16;
	} else if (sa->ss_family == AF_INET) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr.s_addr;
		n = 4;
	} else
		return 0;
	while (n-- > 0)
		h = (h ^ *p++) * 16777619u;	/* FNV-1a */
	return h % LIMIT_BUCKETS;
}

int
smtpd_limit_connect(struct smtpd_session *s)
{
	const struct cfg *cfg = smtpd_cfg;
	uint32_t h = limit_hash(&s->sa), all = 0, mine = 0;

	for (int i = 0; i < LIMIT_ROWS; i++) {
		all += __atomic_load_n(&limit_rows[i].total, __ATOMIC_RELAXED);
		mine += __atomic_load_n(&limit_rows[i].bucket[h],
		    __ATOMIC_RELAXED);
	}
	if (all >= cfg->limits_connections) {
		log_warn("connection limit %u reached; refusing unknown[%s]",
		    cfg->limits_connections, s->addr);
		return -1;
	}
	/* Trusted networks are exempt per client, as Postfix's mynetworks. */
	if (!s->trusted && mine >= cfg->limits_connections_per_client) {
		log_warn("per-client connection limit %u reached for "
		    "unknown[%s]", cfg->limits_connections_per_client, s->addr);
		return -1;
	}
	__atomic_add_fetch(&limit_mine->total, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&limit_mine->bucket[h], 1, __ATOMIC_RELAXED);
	s->counted = 1;
	return 0;
}

void
smtpd_limit_disconnect(struct smtpd_session *s)
{
	uint32_t h = limit_hash(&s->sa);

	if (!s->counted)
		return;
	s->counted = 0;
	__atomic_sub_fetch(&limit_mine->total, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&limit_mine->bucket[h], 1, __ATOMIC_RELAXED);
}
