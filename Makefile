# Petrel: one non-recursive Makefile. lib/ becomes build/libpetrel.a, each
# program links it and lands in build/. See README.md and ../shared/STYLE.md.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
LIBEXECDIR = $(PREFIX)/libexec/petrel
MANDIR = $(PREFIX)/share/man
SYSCONFDIR ?= /etc

CC ?= cc
PKG_CONFIG ?= pkg-config
# Each program links only the libraries it uses (STYLE.md 13): the
# network-facing smtpd never loads libopendkim or libspf2, and only smtp
# links libopendkim. pkg-config runs when the Makefile is read, so `check`
# and `run` install the packages first (deps) and then run a second make,
# which reads this file again once they exist.
BASE_PKGS = libcrypto lmdb yaml-0.1
master_PKGS = $(BASE_PKGS)
smtpd_PKGS = $(BASE_PKGS) libssl libidn2 jansson
smtpd_XLIBS = -pthread
qmgr_PKGS = $(BASE_PKGS)
smtp_PKGS = $(BASE_PKGS) libssl opendkim libidn2
smtp_XLIBS = -lresolv
# relayctl status parses the accounting log's JSON lines with jansson.
relayctl_PKGS = $(BASE_PKGS) libidn2 jansson
relayctl_XLIBS = -lspf2 -lresolv
relayq_PKGS = $(BASE_PKGS)
bounce_PKGS = $(BASE_PKGS)
# sendmail(1) parses address lists with GMime (RFC 5322 groups, comments,
# quoting); only sendmail links it, and only its objects see its headers.
# It reads petrel.yaml but never the queue: no LMDB.
sendmail_PKGS = libcrypto yaml-0.1 gmime-3.0
# Only webhookd links libcurl (its HTTP client; webhookd(8)).
webhookd_PKGS = $(BASE_PKGS) libcurl libssl jansson libidn2
# Only metricsd links libmicrohttpd (its HTTP server; metricsd(8)).
metricsd_PKGS = $(BASE_PKGS) libmicrohttpd
ALL_PKGS = $(BASE_PKGS) libssl opendkim libidn2 jansson libcurl libmicrohttpd
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(ALL_PKGS) 2>/dev/null)
pkg_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
prog_libs = $(call pkg_libs,$($(1)_PKGS)) $($(1)_XLIBS)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla
DEFS = -D_GNU_SOURCE -D_DEFAULT_SOURCE
HARDEN = -fstack-protector-strong -fPIE
ifeq ($(SANITIZE),1)
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
SANLDFLAGS = -fsanitize=address,undefined
else
OPT = -O2 -g -D_FORTIFY_SOURCE=2
SANLDFLAGS =
endif
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(DEFS) $(HARDEN) -Ilib $(PKG_CFLAGS) \
	$(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(SANLDFLAGS) $(LDFLAGS)
# Unit tests link every library: a suite may reach any module.
UNIT_LIBS = $(call pkg_libs,$(ALL_PKGS)) -lspf2 -lresolv -pthread

B = build
PROGRAMS = master smtpd qmgr smtp relayctl relayq bounce webhookd metricsd \
	sendmail
DAEMONS = master smtpd qmgr smtp bounce webhookd metricsd
CLIS = relayctl relayq sendmail
# Names of sendmail as Debian's MTAs install them (argv[0] picks the mode).
SENDMAIL_LINKS = mailq newaliases

LIB_SRCS = $(wildcard lib/*.c)
LIB_OBJS = $(LIB_SRCS:%.c=$(B)/obj/%.o)

TEST_TOOLS = $(B)/wh_render

all: $(addprefix $(B)/,$(PROGRAMS)) $(TEST_TOOLS)

$(B)/obj/%.o: %.c $(wildcard lib/*.h) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(B)/libpetrel.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# A program is <prog>/<prog>.c (main) and the rest of <prog>/*.c, which
# also go into build/lib<prog>.a so that unit tests can reach daemon code.
prog_objs = $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(1)/$(1).c,\
	$(wildcard $(1)/*.c)))

define program_rule
$(B)/lib$(1).a: $(call prog_objs,$(1))
	rm -f $$@
	ar rcs $$@ $$^
$(B)/$(1): $(B)/obj/$(1)/$(1).o $(B)/lib$(1).a $(B)/libpetrel.a
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call prog_libs,$(1))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))
$(B)/obj/sendmail/%.o: CFLAGS_ALL += \
	$(shell $(PKG_CONFIG) --cflags gmime-3.0 2>/dev/null)

# Unit tests: one Check suite per lib module, tests/unit/check_<module>.c,
# and per daemon concern, tests/unit/check_<prog>_<concern>.c, which also
# links build/lib<prog>.a and finds <prog>/<prog>.h.
UNIT_SRCS = $(wildcard tests/unit/check_*.c)
# check_webhookd_cred needs webhookd_format_parse (webhookd_format.c, the
# core of webhookd, issue 10): until that file is in the tree it is left out.
ifeq ($(wildcard webhookd/webhookd_format.c),)
UNIT_SRCS := $(filter-out tests/unit/check_webhookd_cred.c,$(UNIT_SRCS))
endif
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
# webhookd's concerns are unit-tested (check_webhookd_*) from its archive.
UNIT_PROGS = $(sort $(PROGRAMS) webhookd)
$(if $(filter webhookd,$(PROGRAMS)),,$(eval $(B)/libwebhookd.a: \
    $(call prog_objs,webhookd); rm -f $$@ && ar rcs $$@ $$^))
unit_prog = $(firstword $(foreach p,$(UNIT_PROGS),\
	$(if $(filter check_$(p)_%,$(1)),$(p))))
unit_archive = $(if $(call unit_prog,$(1)),$(B)/lib$(call unit_prog,$(1)).a)
unit_include = $(if $(call unit_prog,$(1)),-I$(call unit_prog,$(1)))

.SECONDEXPANSION:
$(B)/tests/%: tests/unit/%.c $$(call unit_archive,$$*) $(B)/libpetrel.a \
    $(wildcard lib/*.h) $(wildcard */*.h) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(call unit_include,$*) $(CHECK_CFLAGS) \
	    $(LDFLAGS_ALL) -o $@ $< \
	    $(call unit_archive,$*) $(B)/libpetrel.a $(CHECK_LIBS) \
	    $(UNIT_LIBS)

# tests/tools (issue 10): wh_render renders one event in a provider's
# webhook format for test_webhook_payloads.py; built by `all`.
$(B)/wh_render: tests/tools/wh_render.c $(B)/libwebhookd.a $(B)/libpetrel.a \
    $(wildcard lib/*.h) webhookd/webhookd.h
	$(CC) $(CFLAGS_ALL) -Iwebhookd $(LDFLAGS_ALL) -o $@ $< \
	    $(B)/libwebhookd.a $(B)/libpetrel.a $(UNIT_LIBS)

# sendmail's suites link GMime, which no other program or suite sees.
$(B)/tests/check_sendmail_%: CHECK_CFLAGS += \
	$(shell $(PKG_CONFIG) --cflags gmime-3.0 2>/dev/null)
$(B)/tests/check_sendmail_%: UNIT_LIBS += $(call pkg_libs,gmime-3.0)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
	    CK_FORK=yes $$t; done

lint:
	sh tests/lint.sh

integration: all
	python3 tests/integration/run.py

# check and run install what is missing first and build (the build
# target below), then go on in a new make that reads this file with the
# packages present: README's two commands work the first time on a fresh
# machine.
check: build
	@$(MAKE) --no-print-directory lint unit integration

# Installs missing Debian build and test dependencies when run as root;
# does nothing when everything is present.
DEPS ?= sh tests/deps.sh
deps:
	@$(DEPS)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/petrel
	for p in $(DAEMONS); do install -m 0755 $(B)/$$p \
	    $(DESTDIR)$(LIBEXECDIR)/$$p; done
	for p in $(CLIS); do install -m 0755 $(B)/$$p $(DESTDIR)$(SBINDIR)/$$p; \
	    done
	ln -sf $(LIBEXECDIR)/master $(DESTDIR)$(SBINDIR)/petrel-master
	for l in $(SENDMAIL_LINKS); do \
	    ln -sf sendmail $(DESTDIR)$(SBINDIR)/$$l; \
	    ln -sf sendmail.1 $(DESTDIR)$(MANDIR)/man1/$$l.1; done
	for m in man/*.[158]; do s=$${m##*.}; \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -m 0644 etc/petrel.yaml \
	    $(DESTDIR)$(SYSCONFDIR)/petrel/petrel.yaml.sample
	install -m 0644 etc/bounce-classes.yaml \
	    $(DESTDIR)$(SYSCONFDIR)/petrel/bounce-classes.yaml
	install -m 0644 etc/shaping.yaml \
	    $(DESTDIR)$(SYSCONFDIR)/petrel/shaping.yaml

run: build
	sh tests/run-local.sh

# The Debian package (debian/, README "Installing the Debian package"):
# dpkg-buildpackage on a copy of the tree (committed and untracked files,
# not build/ or .git) in $(B)/deb/src, so the tree stays clean and the
# .deb, .buildinfo and .changes land in $(B)/deb/.
DEB_DIR = $(B)/deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard | \
	    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; \
	    done' sh | tar --null -T - -cf - | tar -C $(DEB_DIR)/src -xf -; \
	else \
	    tar -cf - --exclude=./build --exclude=./.git --exclude=./run \
	    --exclude=./debian/build . | tar -C $(DEB_DIR)/src -xf -; \
	fi
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc -jauto
	@ls -1 $(DEB_DIR)/*.deb


# deps, then a build by a make that reads this file afresh, since
# pkg-config knew nothing before deps ran (.ci/run checks this path with a
# pkg-config that knows no package until deps has run).
build: deps
	@$(MAKE) --no-print-directory all

clean:
	rm -rf $(B)

.PHONY: all unit lint integration check deps build install run clean deb
.SECONDARY:

# Fuzzing (issue 3): libFuzzer targets tests/fuzz/<target>.c, built into
# build/fuzz/<target> with clang. The lib/ sources they need are compiled
# again here with clang and the sanitizers (build/libpetrel.a comes from
# $(CC) without them). `make fuzz` runs each target for FUZZ_SECONDS on a
# scratch copy of tests/fuzz/corpus/<target>/, so the tree is never written;
# a crash fails the run and its input is kept in build/fuzz/artifacts/.
# See tests/fuzz/README.md.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_smtpcmd fuzz_sasl fuzz_dotstuff fuzz_dsnparam \
	fuzz_mimefold
FUZZ_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz/%)
FUZZ_LIB_SRCS = lib/smtpcmd.c lib/sasl.c lib/b64.c lib/dotstuff.c lib/vbuf.c \
	lib/xalloc.c lib/log.c lib/dsnparam.c lib/xtext.c lib/mimefold.c \
	lib/utf8.c
FUZZ_LIB_OBJS = $(FUZZ_LIB_SRCS:%.c=$(B)/fuzz/obj/%.o)
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) $(DEFS) \
	-Ilib $(shell pkg-config --cflags libcrypto 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
FUZZ_FLAGS = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1

# Issue 9: bounce classification (fuzz_bclass, with the shipped rules, which
# `make fuzz` names in PETREL_FUZZ_RULES) and the delivery report composer
# (fuzz_bounce_dsn, which reads queue files through lib/qfile.c). The
# bounce/ sources it needs are compiled like the lib/ ones.
FUZZ_TARGETS += fuzz_bclass fuzz_bounce_dsn
FUZZ_LIB_SRCS += lib/bclass.c lib/yamlfile.c lib/qfile.c lib/qstore.c \
	lib/qid.c lib/parse.c lib/attr.c lib/outbox.c lib/mdbdir.c lib/json.c \
	lib/event.c lib/counter.c lib/cfg.c lib/cidr.c lib/nexthop.c
FUZZ_BOUNCE_SRCS = bounce/bounce_dsn.c
FUZZ_LIB_OBJS += $(FUZZ_BOUNCE_SRCS:%.c=$(B)/fuzz/obj/%.o)
FUZZ_LIBS += $(shell pkg-config --libs yaml-0.1 lmdb 2>/dev/null || \
	echo -lyaml -llmdb)
FUZZ_ENV = PETREL_FUZZ_RULES=etc/bounce-classes.yaml
$(FUZZ_BOUNCE_SRCS:%.c=$(B)/fuzz/obj/%.o): $(wildcard bounce/*.h)
$(B)/fuzz/fuzz_bounce_dsn: FUZZ_CFLAGS += -Ibounce

# Issue 14: what remote servers and resolvers send smtp: replies
# (smtp/smtp_reply.c) and DNS answers (smtp/smtp_dnsanswer.c).
FUZZ_TARGETS += fuzz_smtp_reply fuzz_dns_answer
# ... and what Petrel reads that a crash, an operator or a compromised peer
# may have garbled: attribute streams, queue files, petrel.yaml.
FUZZ_TARGETS += fuzz_attr fuzz_qfile fuzz_cfg
# Issue 10: the tag and metadata headers smtpd reads (lib/metahdr.c, on
# jansson).
FUZZ_TARGETS += fuzz_metahdr
FUZZ_LIB_SRCS += lib/metahdr.c
FUZZ_LIBS += $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
FUZZ_SMTP_SRCS = smtp/smtp_reply.c smtp/smtp_dnsanswer.c
FUZZ_LIB_OBJS += $(FUZZ_SMTP_SRCS:%.c=$(B)/fuzz/obj/%.o)
FUZZ_LIBS += -lresolv
$(FUZZ_SMTP_SRCS:%.c=$(B)/fuzz/obj/%.o): $(wildcard smtp/*.h)
$(B)/fuzz/fuzz_smtp_reply $(B)/fuzz/fuzz_dns_answer: FUZZ_CFLAGS += -Ismtp

# Issue 14: the header block clients send at DATA, as smtpd reads it
# (smtpd/smtpd_hdr.c: block end, Message-ID:, Date:, From: and its
# addresses; with lib/metahdr.c on the same block).
FUZZ_TARGETS += fuzz_smtpd_hdr
FUZZ_SMTPD_SRCS = smtpd/smtpd_hdr.c
FUZZ_LIB_OBJS += $(FUZZ_SMTPD_SRCS:%.c=$(B)/fuzz/obj/%.o)
$(FUZZ_SMTPD_SRCS:%.c=$(B)/fuzz/obj/%.o): $(wildcard smtpd/*.h)
$(FUZZ_SMTPD_SRCS:%.c=$(B)/fuzz/obj/%.o) $(B)/fuzz/fuzz_smtpd_hdr: \
    FUZZ_CFLAGS += -Ismtpd

# Issue 14: TXT answers as relayctl domain check reads them
# (relayctl/relayctl_txt.c: DKIM keys, DMARC records, SPF's raw strings).
FUZZ_TARGETS += fuzz_txt_answer
FUZZ_RELAYCTL_SRCS = relayctl/relayctl_txt.c
FUZZ_LIB_OBJS += $(FUZZ_RELAYCTL_SRCS:%.c=$(B)/fuzz/obj/%.o)
$(FUZZ_RELAYCTL_SRCS:%.c=$(B)/fuzz/obj/%.o): $(wildcard relayctl/*.h)
$(FUZZ_RELAYCTL_SRCS:%.c=$(B)/fuzz/obj/%.o) $(B)/fuzz/fuzz_txt_answer: \
    FUZZ_CFLAGS += -Irelayctl

# Issue 11: the delivery shaping file (operator input, but a parser).
FUZZ_TARGETS += fuzz_shaping
FUZZ_LIB_SRCS += lib/shaping.c

$(FUZZ_LIB_OBJS): $(B)/fuzz/obj/%.o: %.c $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
	    -c -o $@ $<

$(FUZZ_BINS): $(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS) \
    $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
	    $(FUZZ_LIB_OBJS) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@rm -rf $(B)/fuzz/artifacts && mkdir -p $(B)/fuzz/artifacts
	@failed=; for t in $(FUZZ_TARGETS); do \
	    dir=$$(mktemp -d "$${TMPDIR:-/tmp}/petrel-$$t.XXXXXX") || exit 1; \
	    cp tests/fuzz/corpus/$$t/* "$$dir"/ || exit 1; \
	    echo "== $$t: $(FUZZ_SECONDS)s"; \
	    $(FUZZ_ENV) $(B)/fuzz/$$t $(FUZZ_FLAGS) \
	        -artifact_prefix=$(B)/fuzz/artifacts/$$t- "$$dir" || \
	        failed="$$failed $$t"; \
	    rm -rf "$$dir"; \
	done; \
	if [ -n "$$failed" ]; then \
	    echo "fuzz: FAILED:$$failed; reproducers (run the target on one):"; \
	    ls -1 $(B)/fuzz/artifacts/*; \
	    exit 1; \
	fi; \
	echo "fuzz: all targets passed"

.PHONY: fuzz fuzz-build

# bench/ tools (issue 12): tlsload, the TLS load generator and do-nothing
# TLS sink that bench/bench.py drives, built with the project's flags into
# build/tlsload. Not part of all or check; bench.py runs this target.
bench-tools: $(B)/tlsload $(B)/supplookup $(B)/httpsink $(B)/evlog_bench \
    $(B)/metrics_bench

$(B)/tlsload: bench/tlsload.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< \
	    $(call pkg_libs,libssl libcrypto) -pthread

# bench/supplookup (issue 9): times the suppression list's RCPT check.
$(B)/supplookup: bench/supplookup.c $(B)/libpetrel.a
	@mkdir -p $(B)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(B)/libpetrel.a \
	    $(call pkg_libs,$(BASE_PKGS))

# bench/evlog_bench (issue 10): times the delivery log (lib/evlog); its
# "sample" mode fills a small log for tests/integration/test_evlog.py.
$(B)/evlog_bench: bench/evlog_bench.c $(B)/libpetrel.a
	@mkdir -p $(B)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(B)/libpetrel.a \
	    $(call pkg_libs,$(BASE_PKGS))

# bench/metrics_bench (issue 13): times the counters qmgr bumps per result.
$(B)/metrics_bench: bench/metrics_bench.c $(B)/libpetrel.a
	@mkdir -p $(B)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(B)/libpetrel.a \
	    $(call pkg_libs,$(BASE_PKGS))

# bench/httpsink (issue 10): the webhook endpoint that does nothing.
$(B)/httpsink: bench/httpsink.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $<

.PHONY: bench-tools
