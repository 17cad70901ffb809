/*
 * log.h - logging to syslog or stderr, one line per call.
 *
 * Every line is prefixed with "NAME/program[pid]: " (NAME is Postfix's
 * syslog_name, "petrel" by default), the same on syslog and on stderr, so
 * that Postfix's log tools (pflogsumm --syslog-name=NAME) read either. %m is
 * strerror(errno). warn: an operation failed and we go on; fatal: the
 * process cannot do its job (exit 1); panic/ASSERT: a broken invariant
 * (abort for a core dump). log_safe() makes untrusted text printable.
 */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stddef.h>

enum log_dest {
	LOG_DEST_STDERR,
	LOG_DEST_SYSLOG,
};

/*
 * Sets the program name (kept, not copied) and destination; the syslog
 * name is copied (NULL or "": the program name alone, as before any
 * configuration is read). Lines longer than the identity buffer's 128
 * bytes are not possible: cfg caps the name at 64.
 */
void	log_init(const char *progname, enum log_dest dest);
void	log_init_name(const char *syslog_name, const char *progname,
	    enum log_dest dest);
void	log_set_verbose(int);
int	log_get_verbose(void);
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_fatal(const char *, ...) __attribute__((format(printf, 1, 2)))
	    __attribute__((noreturn));
void	log_panic(const char *, ...) __attribute__((format(printf, 1, 2)))
	    __attribute__((noreturn));

/*
 * Copies untrusted text into a static rotating buffer (4 slots), replacing
 * non-printable bytes with '?' and capping it at 256 bytes (marked "...").
 * The result stays valid until four more calls.
 */
const char *log_safe(const char *);
const char *log_safe_n(const char *, size_t);

#define ASSERT(e) do {							\
	if (!(e))							\
		log_panic("assertion failed: %s at %s:%d", #e,		\
		    __FILE__, __LINE__);				\
} while (0)

#endif
