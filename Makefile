# Petrel: one non-recursive Makefile. lib/ becomes build/libpetrel.a, each
# program links it and lands in build/. See README.md and ../shared/STYLE.md.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
LIBEXECDIR = $(PREFIX)/libexec/petrel
MANDIR = $(PREFIX)/share/man
SYSCONFDIR ?= /etc

CC ?= cc
PKGS = openssl lmdb yaml-0.1 opendkim
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

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
CFLAGS_ALL = -std=c11 -pthread $(OPT) $(WARN) $(DEFS) $(HARDEN) -Ilib $(PKG_CFLAGS) \
	$(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(SANLDFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lspf2 -lresolv -lm -pthread

B = build
PROGRAMS = master smtpd qmgr smtp relayctl relayq
DAEMONS = master smtpd qmgr smtp
CLIS = relayctl relayq

LIB_SRCS = $(wildcard lib/*.c)
LIB_OBJS = $(LIB_SRCS:%.c=$(B)/obj/%.o)

all: $(addprefix $(B)/,$(PROGRAMS))

$(B)/obj/%.o: %.c $(wildcard lib/*.h) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(B)/libpetrel.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

define program_rule
$(B)/$(1): $(patsubst %.c,$(B)/obj/%.o,$(wildcard $(1)/*.c)) $(B)/libpetrel.a
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# Unit tests: one Check suite per lib module, tests/unit/check_<module>.c.
UNIT_SRCS = $(wildcard tests/unit/check_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

$(B)/tests/%: tests/unit/%.c $(B)/libpetrel.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) $(LDFLAGS_ALL) -o $@ $< \
	    $(B)/libpetrel.a $(CHECK_LIBS) $(LIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
	    CK_FORK=yes $$t; done

lint:
	sh tests/lint.sh

integration: all
	python3 tests/integration/run.py

check: deps all lint unit integration

# Installs missing Debian build and test dependencies when run as root;
# does nothing when everything is present.
deps:
	@sh tests/deps.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/petrel
	for p in $(DAEMONS); do install -m 0755 $(B)/$$p \
	    $(DESTDIR)$(LIBEXECDIR)/$$p; done
	for p in $(CLIS); do install -m 0755 $(B)/$$p $(DESTDIR)$(SBINDIR)/$$p; \
	    done
	ln -sf $(LIBEXECDIR)/master $(DESTDIR)$(SBINDIR)/petrel-master
	for m in man/*.[158]; do s=$${m##*.}; \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -m 0644 etc/petrel.yaml \
	    $(DESTDIR)$(SYSCONFDIR)/petrel/petrel.yaml.sample

run: deps all
	sh tests/run-local.sh

clean:
	rm -rf $(B)

.PHONY: all unit lint integration check deps install run clean
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
FUZZ_TARGETS = fuzz_smtpcmd fuzz_sasl fuzz_dotstuff
FUZZ_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz/%)
FUZZ_LIB_SRCS = lib/smtpcmd.c lib/sasl.c lib/dotstuff.c lib/vbuf.c \
	lib/xalloc.c lib/log.c
FUZZ_LIB_OBJS = $(FUZZ_LIB_SRCS:%.c=$(B)/fuzz/obj/%.o)
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) $(DEFS) \
	-Ilib $(shell pkg-config --cflags libcrypto 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
FUZZ_FLAGS = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1

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
	    $(B)/fuzz/$$t $(FUZZ_FLAGS) \
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
