/*
 * counter.c - the queue store's counters: a count per key and fixed
 * window, shared by all processes and kept across restarts.
 *
 * Part of the qstore module (qstore.h, qstore_int.h). smtpd charges
 * message-rate counters inside the transaction that inserts the message
 * (qstore_commit), and counts failed logins and blocks; qmgr prunes old
 * windows. Every operation runs on the caller's transaction.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "attr.h"
#include "log.h"
#include "parse.h"
#include "qstore.h"
#include "qstore_int.h"
#include "xalloc.h"

/* Counter records: attributes window= and count=. */
int
qstore_counter_read_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t *window, uint64_t *count)
{
	struct attr_list l;
	MDB_val k, v;
	size_t used;
	int rc;

	*window = 0;
	*count = 0;
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	if ((rc = mdb_get(txn, qs->db_counters, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return -1;
	attr_list_init(&l);
	if (attr_decode(&l, v.mv_data, v.mv_size, &used, NULL) != 1 ||
	    attr_get_int(&l, "window", window, NULL) == -1 ||
	    attr_get_num(&l, "count", count, NULL) == -1) {
		*window = 0;
		*count = 0;	/* a damaged counter counts as empty */
	}
	attr_list_release(&l);
	return 0;
}

int
qstore_counter_get_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t window, uint64_t *count)
{
	int64_t w;

	if (qstore_counter_read_txn(qs, txn, key, &w, count) == -1)
		return -1;
	if (w != window)
		*count = 0;
	return 0;
}

/* Returns an LMDB error code (0 on success). */
int
qstore_counter_add_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t window, uint64_t n, uint64_t *total)
{
	struct vbuf *val;
	uint64_t count;
	MDB_val k, v;
	int rc;

	if (qstore_counter_get_txn(qs, txn, key, window, &count) == -1)
		return MDB_PANIC;
	count = count > UINT64_MAX - n ? UINT64_MAX : count + n;
	val = vbuf_create(0);
	attr_put_int(val, "window", window);
	attr_put_num(val, "count", count);
	attr_end(val);
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	v.mv_data = val->data;
	v.mv_size = val->len;
	rc = mdb_put(txn, qs->db_counters, &k, &v, 0);
	vbuf_free(val);
	if (rc == 0 && total != NULL)
		*total = count;
	return rc;
}

int
qstore_counter_get(struct qstore_txn *t, const char *key, int64_t window,
    uint64_t *count)
{
	int64_t w;

	if (qstore_counter_read(t, key, &w, count) == -1)
		return -1;
	if (w != window)
		*count = 0;
	return 0;
}

int
qstore_counter_read(struct qstore_txn *t, const char *key, int64_t *window,
    uint64_t *count)
{
	if (strlen(key) > QSTORE_COUNTER_KEY_MAX)
		return qstore_fail(QSTORE_ERR_IO, NULL, "key too long");
	if (qstore_counter_read_txn(t->qs, t->txn, key, window, count) == -1)
		return qstore_fail(QSTORE_ERR_IO, NULL, "counter read");
	return 0;
}

int
qstore_counter_add(struct qstore_txn *t, const char *key, int64_t window,
    uint64_t n, uint64_t *count)
{
	int rc;

	if (strlen(key) > QSTORE_COUNTER_KEY_MAX || strlen(key) == 0)
		return qstore_fail(QSTORE_ERR_IO, NULL, "bad key");
	if ((rc = qstore_counter_add_txn(t->qs, t->txn, key, window, n,
	    count)) != 0)
		return qstore_mdb_fail(rc, NULL, "counter");
	return 0;
}

int
qstore_counter_prune(struct qstore_txn *t, int64_t before)
{
	struct attr_list l;
	MDB_cursor *c;
	MDB_val k, v;
	int64_t window;
	size_t used;
	int rc, n = 0;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_counters, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	attr_list_init(&l);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (attr_decode(&l, v.mv_data, v.mv_size, &used, NULL) == 1 &&
		    attr_get_int(&l, "window", &window, NULL) == 0 &&
		    window >= before)
			continue;
		if (mdb_cursor_del(c, 0) == 0)
			n++;
	}
	attr_list_release(&l);
	mdb_cursor_close(c);
	return n;
}
