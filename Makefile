# Thin wrapper over CMake: the README's two quickstart commands.
#   make demo   install missing dependencies (as root), build, run the pipeline end to end
#   make test   install missing dependencies (as root), build, run ctest
#   make bench  build and run the benchmarks (tests/bench, not part of `make test`)
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build test demo bench fuzz format clean

all: build

deps:
	@sh .ci/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	@REPLAY="$(REPLAY)" sh examples/demo.sh $(BUILD)

bench: build
	cmake --build $(BUILD) --target bench -j$(JOBS)
	sh tests/bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
