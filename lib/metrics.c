/*
 * metrics.c - shared counter files for metricsd(8); see metrics.h for why
 * they are mapped files bumped with relaxed atomic adds.
 *
 * Layout changes bump METRICS_MAGIC: a daemon that finds a file of another
 * layout (an upgrade) starts it again from zero under an flock, which
 * Prometheus reads as a counter reset.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "vbuf.h"
#include "xalloc.h"

/* "PetMetr3": 3 added the credential table (creds, cred_other). */
#define METRICS_MAGIC	UINT64_C(0x5065744d65747233)
/* Bumps held per transaction: qmgr's results commit up to 64 recipients
 * at once (QMGR_TXN_UPDATES), each with up to 6 bumps (a delivery: the
 * count, a latency bucket and sum, DKIM, the credential's outcome). */
#define METRICS_HELD_MAX 1024
#define METRICS_SPIN	100000	/* loads waiting for a slot being claimed */

enum { SLOT_FREE = 0, SLOT_CLAIMING, SLOT_READY };

struct metrics_slot {
	uint32_t	state;
	uint32_t	family;
	char		label[METRICS_LABEL_MAX];
	uint64_t	count;
};

/* One credential's outcomes; claimed as a metrics_slot is. The hash is
 * set before the slot is published and compared first, so that a full
 * table (a credential counted as "other") costs integer compares, not a
 * string compare per slot. */
struct metrics_cred {
	uint32_t	state;
	uint32_t	hash;
	char		label[METRICS_LABEL_MAX];
	uint64_t	count[METRICS_NOUTCOMES];
};

struct metrics_file {
	uint64_t		magic;
	uint64_t		fixed[METRICS_NFIXED];
	struct metrics_slot	slots[METRICS_NSLOTS];
	struct metrics_cred	creds[METRICS_CRED_SLOTS];
	uint64_t		cred_other[METRICS_NOUTCOMES];
};

static const char *const metrics_outcomes[METRICS_NOUTCOMES] = {
	"delivered", "deferred", "bounced", "expired", "suppressed",
};

struct metrics_view {
	const struct metrics_file	*f;
};

const int64_t metrics_buckets[METRICS_NBUCKETS] = {
	1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600,
};

/* An attempt is one SMTP transaction: from tens of milliseconds on
 * loopback to minutes against a slow server (smtp.command_timeout). */
const int64_t metrics_att_buckets_ms[METRICS_NBUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
};

static struct metrics_file *metrics_f;

/*
 * While a transaction is open (metrics_hold) bumps wait here: the counter
 * and the amount. More than METRICS_HELD_MAX count at once (a result batch
 * that large is not expected; a rollback then over-counts a little).
 */
struct metrics_held {
	uint64_t	*ctr;
	uint64_t	 n;
};
static struct metrics_held metrics_held[METRICS_HELD_MAX];
static size_t metrics_nheld;
static int metrics_holding;

static void
metrics_bump(uint64_t *ctr, uint64_t n)
{
	if (metrics_holding && metrics_nheld < METRICS_HELD_MAX) {
		metrics_held[metrics_nheld].ctr = ctr;
		metrics_held[metrics_nheld].n = n;
		metrics_nheld++;
		return;
	}
	__atomic_fetch_add(ctr, n, __ATOMIC_RELAXED);
}

int
metrics_open(const char *queue_dir, const char *name, struct vbuf *why)
{
	char path[PATH_MAX];
	struct stat st;
	void *p;
	int fd;

	if (snprintf(path, sizeof(path), "%s/metrics", queue_dir) >=
	    (int)sizeof(path)) {
		vbuf_addf(why, "%s/metrics: path too long", queue_dir);
		return -1;
	}
	if (mkdir(path, 0750) == -1 && errno != EEXIST) {
		vbuf_addf(why, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if (snprintf(path, sizeof(path), "%s/metrics/%s", queue_dir, name) >=
	    (int)sizeof(path)) {
		vbuf_addf(why, "%s/metrics/%s: path too long", queue_dir, name);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0640)) == -1) {
		vbuf_addf(why, "open %s: %s", path, strerror(errno));
		return -1;
	}
	/* Size and magic are checked and set under the lock: the processes
	 * of one kind start together. */
	if (flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1) {
		vbuf_addf(why, "%s: %s", path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		vbuf_addf(why, "%s: not a regular file", path);
		(void)close(fd);
		return -1;
	}
	if ((size_t)st.st_size != sizeof(struct metrics_file) &&
	    (ftruncate(fd, 0) == -1 ||
	    ftruncate(fd, sizeof(struct metrics_file)) == -1)) {
		vbuf_addf(why, "ftruncate %s: %s", path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	p = mmap(NULL, sizeof(struct metrics_file), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		vbuf_addf(why, "mmap %s: %s", path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	metrics_f = p;
	if (__atomic_load_n(&metrics_f->magic, __ATOMIC_ACQUIRE) !=
	    METRICS_MAGIC) {
		memset(metrics_f, 0, sizeof(*metrics_f));
		__atomic_store_n(&metrics_f->magic, METRICS_MAGIC,
		    __ATOMIC_RELEASE);
	}
	/* Unlocked explicitly: the mapping holds the open file, so closing
	 * the descriptor alone would keep the lock for the process's life
	 * and the next process of this kind would wait forever. */
	(void)flock(fd, LOCK_UN);
	(void)close(fd);
	return 0;
}

int
metrics_enabled(void)
{
	return metrics_f != NULL;
}

void
metrics_add(enum metrics_id id, uint64_t n)
{
	if (metrics_f == NULL || (unsigned)id >= METRICS_NFIXED)
		return;
	metrics_bump(&metrics_f->fixed[id], n);
}

/* FNV-1a over the family and the label. */
static uint32_t
metrics_hash(enum metrics_family fam, const char *label)
{
	uint32_t h = 2166136261u ^ (uint32_t)fam;

	h *= 16777619u;
	for (; *label != '\0'; label++) {
		h ^= (unsigned char)*label;
		h *= 16777619u;
	}
	return h;
}

/*
 * Claims the free slot whose state is *state for label: 1 if it is ours
 * now (label and *tag = tagval, the family or the hash, filled, then
 * published), 0 if it is taken
 * (*st says how; READY once a claimer in progress has finished, within
 * METRICS_SPIN loads).
 */
static int
metrics_claim(uint32_t *state, char *dst, const char *label, uint32_t *tag,
    uint32_t tagval, uint32_t *st)
{
	uint32_t want;
	long spin;

	for (spin = 0; spin < METRICS_SPIN; spin++) {
		*st = __atomic_load_n(state, __ATOMIC_ACQUIRE);
		if (*st != SLOT_FREE)
			break;
		want = SLOT_FREE;
		if (__atomic_compare_exchange_n(state, &want, SLOT_CLAIMING, 0,
		    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			if (tag != NULL)
				*tag = tagval;
			snprintf(dst, METRICS_LABEL_MAX, "%s", label);
			__atomic_store_n(state, SLOT_READY, __ATOMIC_RELEASE);
			return 1;
		}
	}
	/* Another process is filling it: wait a little. */
	while (*st == SLOT_CLAIMING && spin++ < METRICS_SPIN)
		*st = __atomic_load_n(state, __ATOMIC_ACQUIRE);
	return 0;
}

/*
 * The slot of (fam, label), claimed if new; NULL when the table is full.
 * A free slot is taken with a compare-and-swap (FREE to CLAIMING), filled,
 * then published (READY, release order), so a reader never sees half a
 * label.
 */
static struct metrics_slot *
metrics_slot(enum metrics_family fam, const char *label)
{
	struct metrics_slot *s;
	uint32_t h, i, st;

	h = metrics_hash(fam, label);
	for (i = 0; i < METRICS_NSLOTS; i++) {
		s = &metrics_f->slots[(h + i) % METRICS_NSLOTS];
		if (metrics_claim(&s->state, s->label, label, &s->family,
		    (uint32_t)fam, &st))
			return s;
		if (st == SLOT_READY && s->family == (uint32_t)fam &&
		    strncmp(s->label, label, sizeof(s->label) - 1) == 0)
			return s;
	}
	return NULL;
}

void
metrics_add_label(enum metrics_family fam, const char *label, uint64_t n)
{
	struct metrics_slot *s;

	if (metrics_f == NULL || fam < 1 || fam > METRICS_F_LAST)
		return;
	if ((s = metrics_slot(fam, label)) == NULL) {
		metrics_bump(&metrics_f->fixed[METRICS_OVERFLOW_0 + fam - 1],
		    n);
		return;
	}
	metrics_bump(&s->count, n);
}

const char *
metrics_outcome_name(enum metrics_outcome o)
{
	return (unsigned)o < METRICS_NOUTCOMES ? metrics_outcomes[o] : "?";
}

/* The credential's slot, claimed if new; NULL when all are taken. */
static struct metrics_cred *
metrics_cred_slot(const char *cred)
{
	struct metrics_cred *c;
	uint32_t h, i, st;

	h = metrics_hash((enum metrics_family)0, cred);
	for (i = 0; i < METRICS_CRED_SLOTS; i++) {
		c = &metrics_f->creds[(h + i) % METRICS_CRED_SLOTS];
		if (metrics_claim(&c->state, c->label, cred, &c->hash, h, &st))
			return c;
		if (st == SLOT_READY && c->hash == h &&
		    strncmp(c->label, cred, sizeof(c->label) - 1) == 0)
			return c;
	}
	return NULL;
}

void
metrics_credential(const char *cred, enum metrics_outcome o, uint64_t n)
{
	struct metrics_cred *c;

	if (metrics_f == NULL || (unsigned)o >= METRICS_NOUTCOMES)
		return;
	if (cred == NULL || cred[0] == '\0')
		cred = "none";
	if ((c = metrics_cred_slot(cred)) == NULL) {
		metrics_bump(&metrics_f->cred_other[o], n);
		return;
	}
	metrics_bump(&c->count[o], n);
}

static void
metrics_latency(int64_t delay)
{
	size_t i;

	if (delay < 0)
		delay = 0;
	for (i = 0; i < METRICS_NBUCKETS; i++)
		if (delay <= metrics_buckets[i])
			break;
	/* i == METRICS_NBUCKETS: the +Inf bucket, METRICS_LAT_LAST. */
	metrics_add((enum metrics_id)(METRICS_LAT_0 + i), 1);
	metrics_add(METRICS_LAT_SUM, (uint64_t)delay);
}

void
metrics_attempt(int64_t ms)
{
	size_t i;

	if (metrics_f == NULL)
		return;
	if (ms < 0)
		ms = 0;
	for (i = 0; i < METRICS_NBUCKETS; i++)
		if (ms <= metrics_att_buckets_ms[i])
			break;
	metrics_add((enum metrics_id)(METRICS_ATT_0 + i), 1);
	metrics_add(METRICS_ATT_SUM_MS, (uint64_t)ms);
}

void
metrics_event(const struct outbox_event *ev)
{
	const char *cls;

	if (metrics_f == NULL)
		return;
	cls = ev->class != NULL && ev->class[0] != '\0' ? ev->class : "none";
	switch (ev->kind) {
	case OUTBOX_ACCEPTED:
		metrics_add_label(METRICS_F_ACCEPTED,
		    ev->sasl_username != NULL && ev->sasl_username[0] != '\0' ?
		    ev->sasl_username : "none", 1);
		metrics_add(METRICS_ACCEPTED_RCPTS, ev->nrecipients);
		metrics_add(METRICS_ACCEPTED_BYTES, ev->size);
		break;
	case OUTBOX_DELIVERED:
		metrics_add(METRICS_DELIVERED, 1);
		metrics_latency(ev->delay);
		metrics_add(ev->dkim != NULL && strncmp(ev->dkim, "d=", 2) == 0 ?
		    METRICS_DKIM_SIGNED : METRICS_DKIM_UNSIGNED, 1);
		break;
	case OUTBOX_DEFERRED:
		metrics_add_label(METRICS_F_DEFERRED, cls, 1);
		break;
	case OUTBOX_BOUNCED:
		metrics_add_label(METRICS_F_BOUNCED, cls, 1);
		break;
	case OUTBOX_EXPIRED:
		metrics_add(METRICS_EXPIRED, 1);
		break;
	case OUTBOX_SUPPRESSED:
		metrics_add(METRICS_SUPPRESSED, 1);
		break;
	case OUTBOX_DELETED:
		metrics_add(METRICS_DELETED, 1);
		break;
	case OUTBOX_DESTINATION:
		break;		/* of no message: relayctl shaping show */
	}
}

void
metrics_hold(void)
{
	if (metrics_holding)
		return;		/* acct_hold() is idempotent too */
	metrics_holding = 1;
	metrics_nheld = 0;
}

void
metrics_release(int commit)
{
	size_t i;

	if (commit)
		for (i = 0; i < metrics_nheld; i++)
			__atomic_fetch_add(metrics_held[i].ctr,
			    metrics_held[i].n, __ATOMIC_RELAXED);
	metrics_holding = 0;
	metrics_nheld = 0;
}

struct metrics_view *
metrics_view_open(const char *queue_dir, const char *name)
{
	struct metrics_view *v;
	char path[PATH_MAX];
	struct stat st;
	void *p;
	int fd;

	if (snprintf(path, sizeof(path), "%s/metrics/%s", queue_dir, name) >=
	    (int)sizeof(path))
		return NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size != sizeof(struct metrics_file)) {
		(void)close(fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(struct metrics_file), PROT_READ, MAP_SHARED,
	    fd, 0);
	(void)close(fd);
	if (p == MAP_FAILED)
		return NULL;
	if (__atomic_load_n(&((const struct metrics_file *)p)->magic,
	    __ATOMIC_ACQUIRE) != METRICS_MAGIC) {
		(void)munmap(p, sizeof(struct metrics_file));
		return NULL;
	}
	v = xmalloc(sizeof(*v));
	v->f = p;
	return v;
}

void
metrics_view_close(struct metrics_view *v)
{
	if (v == NULL)
		return;
	(void)munmap((void *)(uintptr_t)v->f, sizeof(struct metrics_file));
	free(v);
}

uint64_t
metrics_view_get(const struct metrics_view *v, enum metrics_id id)
{
	if ((unsigned)id >= METRICS_NFIXED)
		return 0;
	return __atomic_load_n(&v->f->fixed[id], __ATOMIC_RELAXED);
}

void
metrics_view_labels(const struct metrics_view *v, enum metrics_family fam,
    void (*cb)(const char *, uint64_t, void *), void *arg)
{
	const struct metrics_slot *s;
	char label[METRICS_LABEL_MAX];
	uint64_t n;
	size_t i;

	for (i = 0; i < METRICS_NSLOTS; i++) {
		s = &v->f->slots[i];
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_READY ||
		    s->family != (uint32_t)fam)
			continue;
		/* The file is writable by the daemons: never trust its NUL. */
		memcpy(label, s->label, sizeof(label));
		label[sizeof(label) - 1] = '\0';
		n = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
		cb(label, n, arg);
	}
	n = metrics_view_get(v, (enum metrics_id)(METRICS_OVERFLOW_0 + fam - 1));
	if (n > 0)
		cb("other", n, arg);
}

void
metrics_view_credentials(const struct metrics_view *v,
    void (*cb)(const char *, const uint64_t *, void *), void *arg)
{
	const struct metrics_cred *c;
	char label[METRICS_LABEL_MAX];
	uint64_t n[METRICS_NOUTCOMES], any;
	size_t i, k;

	for (i = 0; i < METRICS_CRED_SLOTS; i++) {
		c = &v->f->creds[i];
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != SLOT_READY)
			continue;
		/* The file is writable by the daemons: never trust its NUL. */
		memcpy(label, c->label, sizeof(label));
		label[sizeof(label) - 1] = '\0';
		for (k = 0; k < METRICS_NOUTCOMES; k++)
			n[k] = __atomic_load_n(&c->count[k], __ATOMIC_RELAXED);
		cb(label, n, arg);
	}
	for (any = 0, k = 0; k < METRICS_NOUTCOMES; k++) {
		n[k] = __atomic_load_n(&v->f->cred_other[k], __ATOMIC_RELAXED);
		any |= n[k];
	}
	if (any != 0)
		cb("other", n, arg);
}
