# The front door. meson.build is the real build; this drives meson/ninja.
#   make run     install what is missing, build, make dev cert + secrets, serve
#   make test    build and run every test (unit and integration)
#   make clean   remove the build folder (third_party/build is kept)
#   make distclean  also remove the fetched third-party builds
BUILD ?= build
NOTESD := $(BUILD)/notesd

.PHONY: all deps build run test clean distclean

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

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf third_party/build
