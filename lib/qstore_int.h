/*
 * qstore_int.h - what the queue store's files share; nothing outside the
 * store (and its friend, below) includes it.
 *
 * The queue store is one module (public interface qstore.h) in three
 * files: qstore.c (the LMDB environment, transactions, records, the group
 * commit), qfile.c (new and committed message files, the free/ pool,
 * retire, quarantine, rehash, tmp/ clean-up) and counter.c (rate and
 * failed-login counters on the shared transaction). lib/outbox.c, the
 * events database of the same environment, is its one friend: it puts
 * events inside the store's transactions and so needs the handles here.
 */
#ifndef PETREL_QSTORE_INT_H
#define PETREL_QSTORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lmdb.h>

#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

#define QSTORE_NHASH		16
#define QSTORE_WBUF		65536
#define QSTORE_HEADER_MAX	(1024 * 1024)	/* envelope header bytes */
#define QSTORE_RKEY_LEN		(QID_LEN + 4)
#define QSTORE_SKEY_LEN		(8 + QID_LEN + 4)
/*
 * New messages are refused while less than this share of the LMDB map is
 * free, so that qmgr can still record deliveries and free space when the
 * queue is full (as Postfix keeps queue_minfree). Deferring every queued
 * recipient adds its reply text to its record, and copy-on-write needs
 * free pages besides, so half the map is kept for qmgr.
 */
#define QSTORE_HEADROOM_PCT	50
/*
 * qmgr may grow the map beyond queue.map_size, up to this many times it,
 * QSTORE_GROW_MIN or a quarter of it at a time, to record the results of
 * mail already accepted (qstore_grow); admission looks at queue.map_size.
 */
#define QSTORE_GROW_LIMIT	2
#define QSTORE_GROW_MIN		(1024 * 1024)
#define QSTORE_HASH_DIGIT	7	/* in the id: the seconds' last */
#define QSTORE_PROC_DIGIT	13	/* in the id: its process's (qid.h) */
/*
 * The pool of retired message files in free/ (qstore_file_retire): at most
 * this many, each at most this large, so that it holds at most 64 MiB;
 * smtpd reads at most POOL_BATCH names at a time, and after finding none
 * creates POOL_SKIP files before it reads the directory again.
 */
#define QSTORE_POOL_MAX		1024
#define QSTORE_POOL_FILE_MAX	(64 * 1024)
#define QSTORE_POOL_BATCH	256
#define QSTORE_POOL_SKIP	8	/* new files before looking again */


struct qstore {
	char		*dir;
	MDB_env		*env;
	uint64_t	 map_size;	/* queue.map_size, for admission */
	int		 admit_pct;	/* new messages up to this % of it */
	MDB_dbi		 db_msg;
	MDB_dbi		 db_rcpt;
	MDB_dbi		 db_sched;
	MDB_dbi		 db_counters;
	MDB_dbi		 db_events;	/* lib/outbox */
	uint64_t	 outbox_max_events;
	int64_t		 outbox_max_age;	/* s */
	unsigned	 outbox_max_share;	/* % of map_size */
	/* By our committed txns; atomic: smtpd's commit thread adds too. */
	_Atomic uint64_t events_dropped;
	/*
	 * qstore_threads(): every transaction holds map_lock to read, and a
	 * remap (mdb_env_set_mapsize) holds it to write, since LMDB remaps
	 * under the feet of any other thread's transaction.
	 */
	int		 threads;
	pthread_rwlock_t map_lock;
	int		 hash_fd[QSTORE_NHASH];	/* msg/<h>/, for fsync */
	char		(*pool)[QID_SIZE];	/* names in free/ to try */
	size_t		 npool, ipool;
	unsigned	 pool_skip;	/* free/ was empty: new files first */
	unsigned	 pool_seed;	/* rand_r() state */
	size_t		 pool_count;	/* qmgr: >= the files in free/ */
	time_t		 pool_counted;
};

/* The envelope's first line, and its lane line (lib/qfile). */
#define QSTORE_ENV_VERSION	"V=1\n"
#define QSTORE_ENV_BULK		"L=bulk\n"
/* The msg record's lane attribute and its only value. */
#define QSTORE_ATTR_LANE	"lane"
#define QSTORE_LANE_BULK	"bulk"

struct qstore_new {
	struct qstore	*qs;
	char		 qid[QID_SIZE];
	int		 fd;
	int		 created;	/* msg_path is ours: abort unlinks */
	int		 finished;	/* qstore_new_finish succeeded */
	int		 reused;	/* a file from free/: truncate */
	off_t		 fsize;		/* bytes written to the file */
	char		 msg_path[PATH_MAX];
	struct vbuf	*wbuf;
	uint64_t	 size;
	struct qstore_msginfo info;
	char		**rcpts;
	unsigned	*notify;	/* per recipient, or NULL */
	size_t		 nrcpts;
	struct {
		char	 key[QSTORE_COUNTER_KEY_MAX + 1];
		int64_t	 window;
		uint64_t limit;
	}		 charges[QSTORE_CHARGES_MAX];
	size_t		 ncharges;
	enum qstore_err	 status;
	const struct outbox_event *event;	/* accepted, or NULL */
	int64_t		 first_attempt;	/* epoch s; 0: at arrival */
};

struct qstore_txn {
	struct qstore	*qs;
	MDB_txn		*txn;
	uint64_t	 dropped;	/* outbox events, counted at commit */
};

struct qstore_file {
	int			 fd;
	off_t			 body_offset;
	off_t			 body_size;
	struct qstore_envelope	 env;
	char			*header;	/* env strings point in here */
};

/* qstore.c */
int	qstore_fail(enum qstore_err, struct vbuf *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	qstore_mdb_fail(int, struct vbuf *, const char *);
int	qstore_begin(struct qstore *, unsigned, MDB_txn **);
int	qstore_path(char *, size_t, const char *, const char *, const char *);
void	qstore_copy(char *, size_t, const char *);

/* qfile.c */
int	qstore_hash(const char *);

/* counter.c: the same operations as qstore_counter_*, on a raw txn. */
int	qstore_counter_read_txn(struct qstore *, MDB_txn *, const char *,
	    int64_t *, uint64_t *);
int	qstore_counter_get_txn(struct qstore *, MDB_txn *, const char *,
	    int64_t, uint64_t *);
int	qstore_counter_add_txn(struct qstore *, MDB_txn *, const char *,
	    int64_t, uint64_t, uint64_t *);

#endif
