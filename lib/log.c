/*
 * log.c - logging to syslog or stderr (see log.h).
 *
 * A line is formatted into one buffer and written with a single write(2)
 * so that lines from concurrent processes sharing stderr do not interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	2048
#define LOG_SAFE_MAX	256
#define LOG_SAFE_SLOTS	4

#define LOG_IDENT_MAX	128

/* "NAME/program"; openlog() keeps the pointer, so this stays put. */
static char log_ident[LOG_IDENT_MAX] = "petrel";
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_verbose;

static void log_emit(int, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

void
log_init(const char *progname, enum log_dest dest)
{
	log_init_name(NULL, progname, dest);
}

void
log_init_name(const char *syslog_name, const char *progname,
    enum log_dest dest)
{
	int n;

	if (log_dest == LOG_DEST_SYSLOG)
		closelog();
	if (syslog_name != NULL && syslog_name[0] != '\0')
		n = snprintf(log_ident, sizeof(log_ident), "%s/%s",
		    syslog_name, progname);
	else
		n = snprintf(log_ident, sizeof(log_ident), "%s", progname);
	if (n < 0 || (size_t)n >= sizeof(log_ident))
		(void)snprintf(log_ident, sizeof(log_ident), "%s", progname);
	log_dest = dest;
	if (dest == LOG_DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_verbose(int v)
{
	log_verbose = v;
}

int
log_get_verbose(void)
{
	return log_verbose;
}

/* Expands %m itself so the line is built before anything can touch errno. */
static void
log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
	char fmtbuf[LOG_LINE_MAX], line[LOG_LINE_MAX];
	const char *err;
	size_t o = 0;
	int saved = errno, n;

	err = strerror(saved);
	for (; *fmt != '\0' && o < sizeof(fmtbuf) - 1; fmt++) {
		if (fmt[0] == '%' && fmt[1] == 'm') {
			size_t el = strlen(err);
			size_t k;

			for (k = 0; k < el && o < sizeof(fmtbuf) - 1; k++) {
				if (err[k] == '%' && o < sizeof(fmtbuf) - 2)
					fmtbuf[o++] = '%';
				fmtbuf[o++] = err[k];
			}
			fmt++;
		} else if (fmt[0] == '%' && fmt[1] == '%') {
			if (o < sizeof(fmtbuf) - 2) {
				fmtbuf[o++] = '%';
				fmtbuf[o++] = '%';
			}
			fmt++;
		} else
			fmtbuf[o++] = *fmt;
	}
	fmtbuf[o] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = vsnprintf(line, sizeof(line), fmtbuf, ap);
#pragma GCC diagnostic pop
	if (n < 0)
		return;
	if (log_dest == LOG_DEST_SYSLOG) {
		if (level[0] != '\0')
			syslog(prio, "%s: %s", level, line);
		else
			syslog(prio, "%s", line);
	} else {
		char out[LOG_LINE_MAX + 128];
		int m;

		m = snprintf(out, sizeof(out), "%s[%ld]: %s%s%s\n",
		    log_ident, (long)getpid(), level,
		    level[0] != '\0' ? ": " : "", line);
		if (m < 0)
			return;
		if ((size_t)m >= sizeof(out)) {
			m = sizeof(out) - 1;
			out[m - 1] = '\n';
		}
		(void)!write(STDERR_FILENO, out, (size_t)m);
	}
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, "", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning", fmt, ap);
	va_end(ap);
}

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "panic", fmt, ap);
	va_end(ap);
	abort();
}

const char *
log_safe_n(const char *s, size_t n)
{
	static char slots[LOG_SAFE_SLOTS][LOG_SAFE_MAX + 4];
	static int next;
	char *out = slots[next];
	size_t i;

	next = (next + 1) % LOG_SAFE_SLOTS;
	if (s == NULL)
		return "(null)";
	for (i = 0; i < n && i < LOG_SAFE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n) {
		out[i++] = '.';
		out[i++] = '.';
		out[i++] = '.';
	}
	out[i] = '\0';
	return out;
}

const char *
log_safe(const char *s)
{
	return log_safe_n(s, s == NULL ? 0 : strlen(s));
}
