# camftpd: on-camera FTPES upload daemon. `make help` lists the targets.

GO          ?= go
GO_VERSION  := 1.26.8
PKG         := github.com/camftpd/camftpd
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X $(PKG)/daemon.Version=$(VERSION)
# nethttpomithttp2: net/http without its HTTP/2 half. The status socket is
# HTTP/1.1 on a Unix socket (no TLS, no ALPN, no h2c): HTTP/2 is never
# spoken, and leaving it out takes 524 KB off the arm64 binary.
CROSS_FLAGS := -trimpath -tags nethttpomithttp2
BIN         := bin
# The lint gate (.golangci.yml), installed by `make setup` at a pinned version.
GOLANGCI    ?= $(shell $(GO) env GOPATH)/bin/golangci-lint
# Size goal for the stripped arm64 daemon, in bytes (8 MiB).
SIZE_GOAL   := 8388608
# The openssl build (issue 16): the cross flags with the openssl tag added,
# cgo through Debian's cross gcc against libssl-dev:arm64/armhf (scripts/setup).
comma       := ,
OPENSSL_FLAGS := $(subst -tags ,-tags openssl$(comma),$(CROSS_FLAGS))
CC_ARM64    := aarch64-linux-gnu-gcc
CC_ARMV7    := arm-linux-gnueabihf-gcc


.PHONY: setup check help build cross cross-openssl test test-arm64 test-openssl test-all demo bench e2e e2e-qemu install clean tools-check

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the daemon for this machine into bin/camftpd
	$(GO) build $(CROSS_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/camftpd ./cmd/camftpd

cross: ## static linux/arm64 and linux/arm (GOARM=7) binaries, stripped, sizes reported; fails over the arm64 size goal
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(CROSS_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/camftpd-linux-arm64 ./cmd/camftpd
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build $(CROSS_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/camftpd-linux-armv7 ./cmd/camftpd
	@for f in $(BIN)/camftpd-linux-arm64 $(BIN)/camftpd-linux-armv7; do \
	  s=$$(stat -c %s $$f); \
	  awk -v f=$$f -v s=$$s 'BEGIN{printf "size %-26s %9d bytes (%.2f MiB)\n", f, s, s/1048576}'; \
	done
	@s=$$(stat -c %s $(BIN)/camftpd-linux-arm64); if [ $$s -gt $(SIZE_GOAL) ]; then \
	  echo "size goal missed: arm64 binary is $$s bytes, goal $(SIZE_GOAL) (what grew it? go tool nm -size -sort size)"; exit 1; else echo "size goal met: arm64 under 8 MiB"; fi

cross-openssl: ## the openssl build (cgo, libssl.so.3 linked dynamically) for linux/arm64 and linux/arm (GOARM=7), sizes reported; fails over the arm64 size goal
	@scripts/tools-check openssl
	CGO_ENABLED=1 CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(GO) build $(OPENSSL_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/camftpd-openssl-linux-arm64 ./cmd/camftpd
	CGO_ENABLED=1 CC=$(CC_ARMV7) GOOS=linux GOARCH=arm GOARM=7 $(GO) build $(OPENSSL_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/camftpd-openssl-linux-armv7 ./cmd/camftpd
	@for f in $(BIN)/camftpd-openssl-linux-arm64 $(BIN)/camftpd-openssl-linux-armv7; do \
	  s=$$(stat -c %s $$f); \
	  awk -v f=$$f -v s=$$s 'BEGIN{printf "size %-34s %9d bytes (%.2f MiB)\n", f, s, s/1048576}'; \
	  echo "  needs: $$(aarch64-linux-gnu-readelf -d $$f | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"; \
	done
	@s=$$(stat -c %s $(BIN)/camftpd-openssl-linux-arm64); if [ $$s -gt $(SIZE_GOAL) ]; then \
	  echo "size goal missed: arm64 openssl binary is $$s bytes, goal $(SIZE_GOAL) (what grew it? go tool nm -size -sort size)"; exit 1; else echo "size goal met: arm64 openssl build under 8 MiB"; fi

tools-check: ## fail (never skip) when a tool the tests need is missing
	@scripts/tools-check

test: tools-check ## gofmt check, go vet, the lint gate (golangci-lint) and the whole suite with -race on this machine
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI) run ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-arm64: tools-check ## the unit suite as arm64 (qemu-aarch64-static) and armv7 (qemu-arm-static) binaries
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) test -count=1 -timeout 20m -exec qemu-aarch64-static ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) test -count=1 -timeout 20m -exec qemu-arm-static ./...

# The openssl build's tests (scripts/openssl/packages tests): in each package
# with a file constrained by the openssl tag, the tests that its tagged
# _test.go files define (all of transfer/ossl's), with -race on the host and
# as arm64 and armv7 cgo binaries under qemu-user; vet and lint with the tag.
# The rest of those packages' tests, and their importers' (code unchanged by
# the tag), are `make test`'s. QEMU_LD_PREFIX stays unset: the binaries find
# libssl.so.3 in the host's multiarch folders (with it set, the arm64 binary
# hung; docs/openssl-engine.md).
OSSL_TEST = $(GO) test -count=1 -timeout 20m -tags openssl
test-openssl: ## the openssl build: vet and lint with the tag, its tests with -race on the host and as arm64 and armv7 binaries under qemu-user
	@scripts/tools-check openssl
	@list=$$(scripts/openssl/packages tests) || exit 1; \
	  echo "openssl tests:"; echo "$$list" | sed 's/^/  /'; \
	  each() { echo "$$list" | while read -r pkg pat; do \
	    echo "+ $$* $$pkg $${pat:+-run '$$pat'}" | cut -c1-240; "$$@" $${pat:+-run "$$pat"} "$$pkg" || exit 1; done; }; \
	  set -x; \
	  $(GO) vet -tags openssl ./... && \
	  $(GOLANGCI) run --build-tags openssl ./... && \
	  { set +x; } 2>/dev/null && \
	  each $(OSSL_TEST) -race && \
	  each env -u QEMU_LD_PREFIX CGO_ENABLED=1 CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(OSSL_TEST) -exec qemu-aarch64-static && \
	  each env -u QEMU_LD_PREFIX CGO_ENABLED=1 CC=$(CC_ARMV7) GOOS=linux GOARCH=arm GOARM=7 $(OSSL_TEST) -exec qemu-arm-static

test-all: test test-arm64 test-openssl cross cross-openssl e2e-qemu ## every test: host suite, arm64/armv7 suites, QEMU firmware scenarios

setup: ## install the tools the tests need (Debian, as root; idempotent)
	scripts/setup

check: setup ## the README's test command: setup, then test-all
	$(MAKE) test-all

demo: ## the main job on an embedded default: watch a folder, upload to a local FTPS server
	$(GO) run ./cmd/camftpd-demo

bench: ## benchmarks against peers (curl, lftp) on loopback; see BENCHMARKS.md
	scripts/bench

e2e: ## end-to-end tests on the host (the daemon in-process and as a binary, against the in-process FTPS server)
	$(GO) test -race -count=1 -run 'E2E' -v ./daemon/

e2e-qemu: cross cross-openssl ## boot an emulated arm64 camera and run the firmware scenarios (the openssl one on the openssl build)
	CAMFTPD_OPENSSL_BIN=$(BIN)/camftpd-openssl-linux-arm64 scripts/qemu/e2e

install: build ## install binary, example config and init scripts under DESTDIR
	install -D -m 0755 $(BIN)/camftpd $(DESTDIR)/usr/bin/camftpd
	install -D -m 0600 camftpd.example.toml $(DESTDIR)/etc/camftpd.toml
	install -D -m 0755 board/init/camftpd.init $(DESTDIR)/etc/init.d/camftpd
	install -D -m 0644 board/init/camftpd.service $(DESTDIR)/lib/systemd/system/camftpd.service

clean: ## remove build output
	rm -rf $(BIN)
