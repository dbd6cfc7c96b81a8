# aibox-policy build. `make demo` and `make test` are the two commands a newcomer runs.
SHELL := /bin/bash
.DEFAULT_GOAL := build
BIN := node_modules/.bin
export NODE_OPTIONS ?=
export npm_config_update_notifier := false
export npm_config_fund := false
export npm_config_audit := false

SRC := $(shell find src commands -name '*.ts' 2>/dev/null)

.PHONY: build deps sysdeps test test-unit test-e2e typecheck bench demo clean stress fuzz

# npm packages, from the committed lockfile (re-run only when the lockfile changes).
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.package-lock.json

# Debian packages the tests use (docker-registry, skopeo, htpasswd, openssl, chromium); installed when missing.
sysdeps:
	@scripts/install-sysdeps.sh

# `aibox start` runs on every sandbox start without oclif (bin/run.js → dist/src/start/fast.js):
# that module is rebuilt as one esbuild bundle with lazily loaded chunks (the verification half is
# loaded only when the cache cannot answer), which halves its load time against tsc's 20-odd files.
dist/.stamp: node_modules/.package-lock.json tsconfig.json $(SRC)
	$(BIN)/tsc -p tsconfig.json
	rm -rf dist/src/start/fast-chunks
	$(BIN)/esbuild src/start/fast.ts --bundle --splitting --format=esm --platform=node --target=node20 --packages=external \
	  --outdir=dist/src/start --entry-names=[name] --chunk-names=fast-chunks/[name]-[hash] --sourcemap --log-level=warning
	$(BIN)/oclif manifest >/dev/null
	@touch $@

build: dist/.stamp

typecheck: deps
	$(BIN)/tsc -p tsconfig.test.json

test: sysdeps build typecheck
	$(BIN)/mocha 'test/**/*.test.ts'

test-unit: build
	$(BIN)/mocha 'test/unit/**/*.test.ts'

test-e2e: sysdeps build
	$(BIN)/mocha 'test/e2e/**/*.test.ts'

bench: sysdeps build
	node --import tsx bench/run.ts

demo: build
	scripts/demo.sh

# Fuzz every parser target for FUZZ_SECONDS each (default 60), random seed (FUZZ_SEED replays);
# findings are saved under testdata/hostile/regressions/ (README "Reliability and security testing").
fuzz: deps
	node --import tsx scripts/fuzz.ts

# Long randomized runs: STRESS_KILLS kill -9 points (default 100) and the full concurrency load.
stress: sysdeps build
	$(BIN)/mocha --timeout 0 'test/stress/**/*.stress.ts'

clean:
	rm -rf dist oclif.manifest.json .tmp
