# Sekura: build, check, package and install the C library.
#
#   make, make all      release build, header check, the shared library, the C examples
#   make demo           run build/bin/sekura-ssh against build/bin/sekura-sshd
#   make test           cargo fmt --check, clippy, and every test (release profile)
#   make header         regenerate include/sekura.h from src/ffi
#   make abi            regenerate abi/sekura.symbols from the shared library
#   make install PREFIX=DIR [DESTDIR=...]
#   make bench          bench/run.py, bench/server.py and bench/cpu.py: our client and our
#                       server against OpenSSH's, throughput, handshakes, memory, and CPU
#                       and context switches per GiB
#   make clean
#
# Variables: PROFILE (cargo profile, default release), BUILD (output directory, default
# build), CC, CFLAGS, SANITIZE (for example address,undefined: builds the C programs with
# those sanitizers). The tests in tests/ run make with NO_CARGO=1 and STATIC_LIB set to the
# static library their own cargo build made, so that make never starts a second cargo.

CARGO ?= cargo
PREFIX ?= /usr/local
PROFILE ?= release
BUILD ?= build
PROFILE_DIR := $(or $(CARGO_TARGET_DIR),target)/$(patsubst dev,debug,$(patsubst test,debug,$(patsubst bench,release,$(PROFILE))))
CFLAGS ?= -O2 -g
SANITIZE ?=

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
STATIC_LIB ?= $(PROFILE_DIR)/libsekura.a
LIB_DIR := $(BUILD)/lib
SHARED_LIB := $(LIB_DIR)/libsekura.so.$(VERSION)

# The C programs: every examples-c/*.c is an example, every tests/c/*.c a test program.
EXAMPLES := $(patsubst examples-c/%.c,$(BUILD)/bin/%,$(wildcard examples-c/*.c))
C_TESTS := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/*.c))
C_STRICT := -std=c11 -Wall -Wextra -Wpedantic -Werror
C_SANITIZE := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all)
C_LINK := -L$(LIB_DIR) -lsekura -Wl,-rpath,$(abspath $(LIB_DIR))

.PHONY: all lib header-check examples c-programs header abi demo test install bench clean FORCE

all: header-check examples

# cargo decides whether anything is out of date; the relink below runs only when it wrote a
# new libsekura.a.
ifeq ($(NO_CARGO),)
$(STATIC_LIB): FORCE
	$(CARGO) build --profile $(PROFILE) --lib
endif

# The shared library: linked from the static one with the version script (see abi/link.sh).
$(SHARED_LIB): $(STATIC_LIB) abi/sekura.map abi/link.sh
	abi/link.sh shared $(STATIC_LIB) $(LIB_DIR) $(VERSION)

lib: $(SHARED_LIB)

header-check:
	$(CARGO) test --profile $(PROFILE) --test header

examples: $(EXAMPLES)

c-programs: $(EXAMPLES) $(C_TESTS)

define compile_c
	@mkdir -p $(@D)
	$(CC) $(C_STRICT) $(CFLAGS) $(C_SANITIZE) -pthread -Iinclude -o $@ $< $(C_LINK)
endef

$(BUILD)/bin/%: examples-c/%.c include/sekura.h $(SHARED_LIB)
	$(compile_c)

$(BUILD)/tests/%: tests/c/%.c $(wildcard tests/c/*.h) include/sekura.h $(SHARED_LIB)
	$(compile_c)

header:
	$(CARGO) test --profile $(PROFILE) --test header -- --ignored --exact regenerate

abi:
	$(CARGO) test --profile $(PROFILE) --test abi -- --ignored --exact regenerate

demo: examples
	examples-c/demo.sh $(BUILD)/bin/sekura-ssh $(BUILD)/bin/sekura-sshd

# The suites whose transports run on the driver SEKURA_TEST_DRIVER names: `make test` runs
# them again with the caller-driven driver (blocking, no threads of ours).
DRIVEN_SUITES := interop_openssh smoke_openssh legacy_and_generated_openssh dropbear_interop \
	server_loopback server_openssh server_other_clients paramiko_server server_hostile \
	bad_peer channel_semantics transport_upkeep forwarding byte_streams auth_agent_cert \
	agent_openssh hostkeys_openssh logging server_decisions

test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --release --no-fail-fast --tests
	SEKURA_TEST_DRIVER=driven $(CARGO) test --release --no-fail-fast \
	    $(addprefix --test ,$(DRIVEN_SUITES))

install: $(SHARED_LIB)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	cp -P $(LIB_DIR)/libsekura.so* $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/libsekura.a
	install -m 0644 include/sekura.h $(DESTDIR)$(PREFIX)/include/sekura.h
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e "s|@LIBS_PRIVATE@|$$(abi/link.sh native-libs)|g" \
	    pkgconfig/sekura.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sekura.pc

bench: examples
	python3 bench/run.py
	python3 bench/server.py
	python3 bench/cpu.py $(BUILD)

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
