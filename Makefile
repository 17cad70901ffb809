# Petrel: one non-recursive Makefile. lib/ becomes build/libpetrel.a, each
# program links it and lands in build/. See README.md and ../shared/STYLE.md.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
LIBEXECDIR = $(PREFIX)/libexec/petrel
MANDIR = $(PREFIX)/share/man
SYSCONFDIR ?= /etc

CC ?= cc
PKGS = openssl lmdb yaml-0.1
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
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(DEFS) $(HARDEN) -Ilib $(PKG_CFLAGS) \
	$(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(SANLDFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lresolv -lm

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
