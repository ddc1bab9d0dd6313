# Two commands, both from a clean clone:
#   make serve   start certfleet on its embedded default (SQLite + embedded CA, no internet)
#   make test    install what the tests need, then lint, typecheck, build and run every test
.PHONY: serve test deps build bench clean

node_modules/.installed: package.json package-lock.json
	npm ci
	@touch $@

deps: node_modules/.installed

build: deps
	npm run build

serve: build
	node bin/certfleet.js serve

test: deps
	./scripts/install-test-deps.sh
	npm test

bench: build
	npm run bench

clean:
	rm -rf dist node_modules/.installed
