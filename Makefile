# moat: `make audit` builds moat and audits this host; `make test` installs
# the test dependencies and runs the whole suite.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/moat-sh/moat/internal/cli.version=$(VERSION)

.PHONY: build audit test bench clean

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/moat ./cmd/moat

audit: build
	./bin/moat audit

test:
	scripts/test.sh

bench: build
	bench/audit.sh

clean:
	rm -rf bin
