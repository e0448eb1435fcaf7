# The front door. meson.build is the real build; this drives meson/ninja.
#   make run     install what is missing, build, make dev cert + secrets, serve
#   make test    build and run every test (unit and integration)
#   make clean   remove the build folder (third_party/build is kept)
#   make distclean  also remove the fetched third-party builds
# Assurance (fuzz/README.md, issue 7):
#   make fuzz        build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz
#   make fuzz-smoke  run each target FUZZ_SECONDS (60) seconds; fails on any finding
#   make test-asan   the whole test suite under ASan+UBSan+LSan in build-asan
#   make check-hardening  PIE, full RELRO, NX, canary and fortify on build/notesd
#   make sbom        CycloneDX 1.5 SBOM of what is linked into notesd: build/notesd.cdx.json
#   make lint        the lint suite alone: cppcheck + clang-tidy, runtime-SQL, SBOM, hardening
# Performance (bench/, issue 8):
#   make bench        notesd side by side with nginx; writes bench/RESULTS.md
#   make bench-smoke  a few seconds of the same harness (CI): checks it works
BUILD ?= build
NOTESD := $(BUILD)/notesd
FUZZ_BUILD ?= build-fuzz
ASAN_BUILD ?= build-asan
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := http_request json_body field_decrypt config audit_verify

.PHONY: all deps build run test lint clean distclean fuzz fuzz-smoke test-asan check-hardening sbom \
	bench bench-smoke

all: build

deps:
	@tools/ensure-packages.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Development certificate and secrets: made on first run, never committed.
certs/dev/cert.pem: | build
	$(NOTESD) gen-cert --host localhost --out certs/dev

.env.dev: | build
	@umask 077 && { \
	  echo "# Development secrets made by make run. Never commit this file."; \
	  $(NOTESD) gen-secrets; \
	  echo "NOTES_TLS_CERT=certs/dev/cert.pem"; \
	  echo "NOTES_TLS_KEY=certs/dev/key.pem"; \
	} > .env.dev.tmp && mv .env.dev.tmp .env.dev
	@echo "wrote .env.dev (mode 0600)"

run: build certs/dev/cert.pem .env.dev
	@mkdir -p data
	@set -a && . ./.env.dev && set +a && \
	  NOTES_REGISTRATION=$${NOTES_REGISTRATION:-open} \
	  NOTES_REDIRECT_LISTEN=$${NOTES_REDIRECT_LISTEN:-127.0.0.1:8080} exec $(NOTESD) serve

test: build
	meson test -C $(BUILD) --print-errorlogs

lint: build
	meson test -C $(BUILD) --print-errorlogs --suite lint

# libFuzzer ships with clang, so this build uses clang; the third-party
# static libraries (built by gcc, uninstrumented) link into it unchanged.
$(FUZZ_BUILD)/build.ninja: | deps
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false \
	  -Db_sanitize=address,undefined -Db_lundef=false

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(addprefix fuzz/fuzz_,$(FUZZ_TARGETS))

fuzz-smoke: fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/smoke.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

# Every test, integration included (the notesd they start is the sanitized
# one), with leak checking. Reports go to files rather than only to stderr,
# so one from a notesd child process cannot pass unseen: any file there
# fails the run. tests/lsan.supp names third-party frames only.
# All but static-link: it asserts that only C-library parts are linked
# dynamically, which no sanitizer build can be (libasan and libubsan are
# shared; linking them statically would hide their interceptors behind
# core_dep's --exclude-libs). `make test` runs it on the release build.
# static-analysis reads the sources, not the binary: `make test` runs it once.
ASAN_REPORTS = $(CURDIR)/$(ASAN_BUILD)/sanitizer-reports
$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined

test-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  meson test -C $(ASAN_BUILD) --print-errorlogs --timeout-multiplier 3 \
	    $$(meson test -C $(ASAN_BUILD) --list 2>/dev/null | sed -n 's|^[^ ]* / ||p' | grep -vxE 'static-link|static-analysis'); \
	  rc=$$?; \
	  if [ -n "$$(ls -A $(ASAN_REPORTS))" ]; then \
	    echo "FAIL: sanitizer reports in $(ASAN_REPORTS):"; cat $(ASAN_REPORTS)/*; exit 1; \
	  fi; \
	  exit $$rc

check-hardening: build
	tests/check_hardening.sh $(NOTESD)

# The bench's two helpers: a wrk preload shim that can turn TLS session
# resumption off, and the mbedTLS crypto floor linked against our own
# static mbedTLS (same pinned source and configuration as notesd).
TP_PREFIX := third_party/build/prefix
BENCH_TOOLS := $(BUILD)/bench/noresume.so $(BUILD)/bench/cryptofloor $(BUILD)/bench/mbedtls-benchmark

$(BUILD)/bench/noresume.so: bench/noresume.c | build
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -fPIC -shared -o $@ $< -ldl

# It links notesd's X25519 share export (src/tls_x25519.c) the way notesd does.
$(BUILD)/bench/cryptofloor: bench/cryptofloor.c src/tls_x25519.c $(TP_PREFIX)/lib/libmbedcrypto.a | build
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc -isystem $(TP_PREFIX)/include \
	  -isystem $(TP_PREFIX)/include/everest '-DMBEDTLS_CONFIG_FILE=<notesd_mbedtls_config.h>' -o $@ \
	  bench/cryptofloor.c src/tls_x25519.c -Wl,--wrap=mbedtls_psa_ecp_export_public_key \
	  $(TP_PREFIX)/lib/libmbedcrypto.a

# mbedTLS's own benchmark program, from the pinned source fetch.sh unpacked,
# built with our configuration: issue 8 defines the handshake floor by it.
$(BUILD)/bench/mbedtls-benchmark: $(TP_PREFIX)/lib/libmbedcrypto.a | build
	@mkdir -p $(@D)
	$(CC) -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -isystem $(TP_PREFIX)/include -Ithird_party \
	  '-DMBEDTLS_CONFIG_FILE=<notesd_mbedtls_config.h>' -o $@ \
	  third_party/build/src/mbedtls/programs/test/benchmark.c \
	  $(TP_PREFIX)/lib/libmbedtls.a $(TP_PREFIX)/lib/libmbedx509.a $(TP_PREFIX)/lib/libmbedcrypto.a

bench: build $(BENCH_TOOLS)
	python3 bench/run.py --notesd $(NOTESD) --tools $(BUILD)/bench --out bench/RESULTS.md

bench-smoke: build $(BENCH_TOOLS)
	python3 bench/run.py --smoke --notesd $(NOTESD) --tools $(BUILD)/bench

# Derived from the link line, deps.lock and dpkg (tools/sbom.py; docs/supply-chain.md).
sbom: build
	tools/sbom.py $(BUILD) -o $(BUILD)/notesd.cdx.json
	@echo "wrote $(BUILD)/notesd.cdx.json"

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(ASAN_BUILD)

distclean: clean
	rm -rf third_party/build
