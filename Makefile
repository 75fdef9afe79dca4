# hearth: `make test` installs what the tests need and runs all of them,
# interop tests with real clients included. CI runs exactly this (.ci/run).
GO ?= go

.PHONY: test testdeps unit run bench vet

test: testdeps
	HEARTH_INTEROP=1 $(GO) test -race -count=1 -timeout 60m ./...

testdeps:
	bash scripts/testdeps.sh

# Fast loop while developing: no external clients, no installs.
unit:
	$(GO) test -race ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

bench:
	$(GO) test -run XXX -bench . -benchmem ./...

run:
	$(GO) run ./cmd/hearth
