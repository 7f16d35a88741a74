# Junction's developer entry points. `make test` is what CI runs (.ci/run).
SWIFT ?= swift
JUNCTION_VENV ?= $(HOME)/.cache/junction/venv
export JUNCTION_PYTHON := $(JUNCTION_VENV)/bin/python
export JUNCTION_VENV

.PHONY: run run-real-vllm test-real-vllm deps proto proto-check build build-release dist test-dist test test-interop test-rules raft-sim test-asan fuzz-wire fuzz-promtext fuzz-scheduler bench-engine-sim bench-routing bench-wire bench-raft bench-schedule bench-gateway bench-compare bench-pd bench-fairness clean

## Build, bring up the local cluster (3 schedulers, 4 simulated engines with agents, 2 gateways,
## HAProxy on 127.0.0.1:8080), and send sample requests through it. Deploy/local/down.sh stops it.
run: build
	@Deploy/local/up.sh
	@Deploy/local/demo.sh

## The same cluster with two real vLLM servers (vLLM's CPU build on a tiny local model, installed
## into ~/.cache/junction/vllm by Deploy/real-vllm/install.sh) instead of the four simulators.
run-real-vllm: build
	@Deploy/real-vllm/install.sh
	@JUNCTION_ENGINES=real-vllm Deploy/local/up.sh
	@Deploy/local/demo.sh

## Opt-in end-to-end test against two real vLLM servers (ports 18400+; a few minutes).
test-real-vllm: build
	@Deploy/real-vllm/install.sh
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/real_vllm

## Install system packages and the Python test venv (idempotent).
deps:
	@Deploy/dev/install-deps.sh

## Regenerate the protobuf-c C code and the Swift message types from Proto/junction.proto.
proto: deps
	Proto/generate.sh

## Fail if the checked-in generated code differs from what Proto/junction.proto generates.
proto-check: deps
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	Proto/generate.sh $$tmp/c $$tmp/Messages.swift && \
	diff -u Sources/CJunctionProto/junction.pb-c.c $$tmp/c/junction.pb-c.c && \
	diff -u Sources/CJunctionProto/include/junction.pb-c.h $$tmp/c/include/junction.pb-c.h && \
	diff -u Sources/Wire/Generated/Messages.swift $$tmp/Messages.swift && \
	echo "proto-check: generated code matches Proto/junction.proto"

build: deps
	$(SWIFT) build

build-release: deps
	$(SWIFT) build -c release

## The test suite: dependencies, generated-code check, build, every test, 2,000 simulated seeds.
test: deps proto-check test-rules
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) test-interop
	$(MAKE) raft-sim

## The Prometheus recording and alerting rules: well-formed, and each alert fires on its case
## and not before (promtool's rule unit tests, Deploy/observability/junction-rules.test.yml).
test-rules: deps
	cd Deploy/observability && promtool check rules junction-rules.yml && promtool test rules junction-rules.test.yml

## Real peers against real processes: the openai client, prometheus_client and promtool against
## `junction engine-sim`; the openai and websockets clients through a gateway; the local cluster
## (Deploy/local) with three chaos faults under load; Deploy/k8s rendered and validated against the
## Kubernetes API schemas; the cluster across namespaced hosts (Deploy/netns, root only) with the
## leader's host cut off and a leader killed across a 20 ms WAN (debug build from `make build`/`make test`).
test-interop:
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/engine_sim
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/gateway
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/chaos
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/bench
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q Tests/Interop/deploy
	JUNCTION_BIN=$(CURDIR)/.build/debug/junction $(JUNCTION_PYTHON) -m pytest -q -rs Tests/Interop/netns

## A self-contained release binary for a container image (Deploy/container/Containerfile): the
## Swift runtime linked in, stripped, in dist/. It needs glibc, libstdc++, zlib and libprotobuf-c,
## all in debian:bookworm-slim with libprotobuf-c1 added. test-dist runs it and checks that.
dist: deps
	$(SWIFT) build -c release --static-swift-stdlib --product junction --scratch-path .build-dist
	mkdir -p dist && strip -o dist/junction .build-dist/release/junction

test-dist: dist
	$(JUNCTION_PYTHON) -m pytest -q Tests/Interop/dist

## The deterministic Raft simulation (release build). Longer soaks: RAFT_SEEDS=100000 make raft-sim
RAFT_SEED ?= 1
RAFT_SEEDS ?= 2000
raft-sim:
	$(SWIFT) run -c release raft-sim --seed $(RAFT_SEED) --count $(RAFT_SEEDS)

## The codec and connection tests under AddressSanitizer + LeakSanitizer (separate build folder).
test-asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp:print_suppressions=1 $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan --filter 'MessageCodingTests|FrameCodecTests|HandshakeAndBackoffTests|BadInputTests|ConnectionTests|InteropTests'

## libFuzzer on frame and message decoding. FUZZ_SECONDS=600 by default.
FUZZ_SECONDS ?= 600
fuzz-wire: deps
	Tests/Fuzz/run.sh wire $(FUZZ_SECONDS)

## libFuzzer on the Prometheus text parser (FUZZ_SECONDS, default 600).
fuzz-promtext: deps
	Tests/Fuzz/run.sh promtext $(FUZZ_SECONDS)

## The scheduler's handlers, driven with decoded messages from every role (Docs/fuzzing.md).
fuzz-scheduler: deps
	Tests/Fuzz/run.sh scheduler $(FUZZ_SECONDS)

## The engine simulator's CPU use at 500 concurrent streams (release build; prints figures).
bench-engine-sim: deps
	$(SWIFT) build -c release --product junction
	Deploy/bench/engine-sim-efficiency.sh 500 20 1 256

## Decisions per second and latency of the pure routing policies (release build; prints figures).
bench-routing: deps
	$(SWIFT) run -c release junction bench routing

## Wire codec and round-trip benchmark (release build; prints figures).
bench-wire: build-release
	.build/release/junction bench wire

## Raft commit throughput and latency on file storage with fsync (release build; prints figures).
bench-raft: build-release
	.build/release/junction bench raft

## schedule over the wire against the leader of a local trio of processes (release build; prints figures).
bench-schedule: build-release
	.build/release/junction bench schedule

## Gateway overhead against the engine direct, smg, sglang-router and vllm-router (release build; prints figures).
bench-gateway: build-release
	python3 Deploy/bench/gateway-overhead.py

## Junction's policies, round-robin, smg and vllm-router on the same simulated engines, every preset
## workload (closed and open loop, KV-cache pressure, saturation, queueing); tables and TTFT plots in
## .build/bench-compare (Docs/benchmarks.md).
bench-compare: build-release
	python3 Deploy/bench/compare.py

## pd-split on 2 prefill + 2 decode simulators against prefix-cache on 4 ordinary ones, both
## scenarios; tables and TTFT plots in .build/bench-pd (Docs/benchmarks.md).
bench-pd: build-release
	python3 Deploy/bench/pd-compare.py

## Flow control against FIFO: a flooding tenant at 5x its share and a steady interactive one on
## two simulated 32b-l20x2 engines (priority scheduling) at real time, 240 s a run (about 27 min);
## the interactive TTFT against running alone, the pool's output against FIFO's, with batch held to
## 32 running sequences and with the default headroom (Docs/benchmarks.md). Table in .build/bench-fairness.
bench-fairness: build-release
	python3 Deploy/bench/fairness.py --seconds 240 --out .build/bench-fairness \
	  --batch-headroom '{"max_waiting": 0, "max_kv_usage": 0.9, "max_prefill_ms": 100, "max_running": 32}' \
	  --also-batch-headroom '{"max_waiting": 0, "max_kv_usage": 0.9, "max_prefill_ms": 100}'

clean:
	rm -rf .build .build-asan Tests/Fuzz/.build
