# Predictors - one non-recursive Makefile (STYLE.md section 9).
#
#   make            build every program into bin/
#   make run        install what is missing, build, start the local stack, run the weekly pipeline
#   make down       stop what `make run` left running
#   make test       install what is missing, build under ASan+UBSan, run every test; last line "N passed, N failed"
#   make bench      benchmarks side by side with the peers (results go into the README by hand)
#   make test-gpu   compare the CUDA kernels with the CPU reference (skips without a GPU)
#   make fuzz       run every fuzz target for FUZZ_SECONDS each (default 60)
#   make deps       install the Debian packages in deploy/packages.txt that are missing
#
# Layout conventions, so that a new module needs no Makefile edit:
#   - every .c under proto/ lib/ kernels/ workers/runtime/ goes into the common library;
#   - a program is a directory with main.c: broker -> bin/broker, scheduler -> bin/sched,
#     monitoring -> bin/monitor, workers/NAME -> bin/worker-NAME; its other .c files are
#     its private modules; a file DIR/main_NAME.c is an extra program bin/NAME built the same way;
#   - fuzz_*.c are libFuzzer targets, built only by `make fuzz`;
#   - every module's `x_test (bool verbose)` (at the start of a line) is gathered into bin/selftest;
#   - kernels/*.cu build with nvcc when it is found, into the CUDA library that CUDA_PROGS link.

SHELL    := /bin/bash
PKGS     := libczmq libzmq libsodium msgpack hiredis libpq libcurl jansson inih libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BLAS_LIBS  := -lopenblas
XGB_LIBS   := -lxgboost

CC       ?= gcc
# Quiet by default ("CC file"); `make V=1` shows every command.
ifeq ($(V),1)
Q        :=
say       = @true
else
Q        := @
say       = @printf '  %-6s %s\n' $1 $2
endif
CPPFLAGS += -D_GNU_SOURCE -Ilib -Iproto -Ikernels -Iworkers/runtime -MMD -MP
CFLAGS   += -std=c11 -g -O2 -Wall -Wextra -Wformat=2 -Wshadow -Werror -fopenmp $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) $(BLAS_LIBS) $(XGB_LIBS) -fopenmp -lpthread -lm

ifdef SANITIZE
BUILD    := build/san
BIN      := build/san/bin
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=$(SANITIZE)
else
BUILD    := build/rel
BIN      := bin
endif

NVCC     := $(shell command -v nvcc 2>/dev/null)
NVCCFLAGS ?= -O2 -std=c++17 -Ilib -Ikernels \
             -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
CUDA_HOME ?= /usr/local/cuda
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lnccl
CUDA_PROGS := worker-train test-gpu

# ---------------------------------------------------------------- sources
COMMON_DIRS := proto lib kernels workers/runtime
#   (filter-out takes one % per pattern, so main_NAME.c files are listed by wildcard)
not_special = $(filter-out %/main.c $(wildcard $(addsuffix /main_*.c,$(COMMON_DIRS) broker scheduler monitoring workers/*)) $(wildcard $(addsuffix /fuzz_*.c,$(COMMON_DIRS) broker scheduler monitoring workers/*)),$1)
COMMON_SRC  := $(call not_special,$(wildcard $(addsuffix /*.c,$(COMMON_DIRS))))
COMMON_OBJ  := $(COMMON_SRC:%.c=$(BUILD)/%.o)
COMMON_LIB  := $(BUILD)/libpredictors.a

PROG_DIRS   := $(patsubst %/main.c,%,$(wildcard broker/main.c scheduler/main.c monitoring/main.c workers/*/main.c))
progname     = $(if $(filter workers/%,$1),worker-$(notdir $1),$(if $(filter scheduler,$1),sched,$(if $(filter monitoring,$1),monitor,$1)))
EXTRA_MAINS := $(filter-out workers/runtime/%,$(wildcard */main_*.c workers/*/main_*.c))
PRIV_SRC     = $(call not_special,$(wildcard $1/*.c))
ALL_PRIV_SRC := $(foreach d,$(sort $(PROG_DIRS) $(dir $(EXTRA_MAINS:%/=%))),$(call PRIV_SRC,$(patsubst %/,%,$d)))
ALL_PRIV_SRC := $(sort $(filter-out $(COMMON_SRC),$(ALL_PRIV_SRC)))

CUDA_SRC    := $(wildcard kernels/*.cu)
ifneq ($(and $(NVCC),$(CUDA_SRC)),)
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(BUILD)/cuda/%.o)
CUDA_LIB    := $(BUILD)/libpredictors_cuda.a
#   C callers guard the GPU entry points of kernels/kn_backend.h with this.
CPPFLAGS    += -DKN_HAVE_CUDA
endif

PROGRAMS :=
define PROGRAM_template
# $1 = directory, $2 = main source, $3 = program name
$(BIN)/$3: $(BUILD)/$(2:.c=.o) $(patsubst %.c,$(BUILD)/%.o,$(call PRIV_SRC,$1)) $(COMMON_LIB) $(if $(filter $3,$(CUDA_PROGS)),$(CUDA_LIB))
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(COMMON_LIB) $(if $(and $(CUDA_LIB),$(filter $3,$(CUDA_PROGS))),$(CUDA_LIB) $(CUDA_LIBS) -lstdc++) $$(LDLIBS)
PROGRAMS += $(BIN)/$3
endef
$(foreach d,$(PROG_DIRS),$(eval $(call PROGRAM_template,$d,$d/main.c,$(call progname,$d))))
$(foreach m,$(EXTRA_MAINS),$(eval $(call PROGRAM_template,$(patsubst %/,%,$(dir $m)),$m,$(patsubst main_%.c,%,$(notdir $m)))))

# ---------------------------------------------------------------- rules
.PHONY: all deps run down test check bench test-gpu fuzz clean distclean
.DEFAULT_GOAL := all

all: $(PROGRAMS) $(BIN)/selftest $(if $(CUDA_LIB),$(CUDA_LIB))

# The kernels never read errno; without it GCC keeps a scalar libm call
# beside every square root, so loops with one (AdamW) stay scalar. A pragma
# cannot do this: math.h's builtins take the flag from the command line.
$(BUILD)/kernels/%.o: CFLAGS += -fno-math-errno

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/cuda/%.o: %.cu
	@mkdir -p $(@D)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

$(COMMON_LIB): $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(CUDA_LIB): $(CUDA_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The selftest table: every `name_test (bool verbose)` that starts a line.
SELFTEST_SRC := $(sort $(COMMON_SRC) $(ALL_PRIV_SRC))
# The list of sources is a file that changes when the list does, so a module added with an
# old timestamp (a merge, a copy) still regenerates the table.
SELFTEST_LIST := $(BUILD)/selftest_sources.txt
$(shell mkdir -p $(BUILD) && { echo '$(SELFTEST_SRC)' | cmp -s - $(SELFTEST_LIST) || echo '$(SELFTEST_SRC)' > $(SELFTEST_LIST); })
$(BUILD)/selftest_table.c: $(SELFTEST_SRC) $(SELFTEST_LIST) tests/gen_selftests.sh
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)tests/gen_selftests.sh $(SELFTEST_SRC) > $@.tmp && mv $@.tmp $@

$(BIN)/selftest: $(BUILD)/selftest_table.o $(ALL_PRIV_SRC:%.c=$(BUILD)/%.o) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) -Wl,--whole-archive $(COMMON_LIB) -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/selftest_table.o: $(BUILD)/selftest_table.c
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

deps:
	@deploy/deps

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/run

down:
	@deploy/stack down

# `make test`: everything, sanitized, one summary line at the end.
test: deps
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all
	@$(MAKE) --no-print-directory all
	@tests/run build/san/bin

check: all
	@tests/run $(BIN)

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/run

test-gpu: all
	@tests/gpu/run $(BIN)

FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/run $(FUZZ_SECONDS)

clean:
	rm -rf build bin

distclean: clean
	-deploy/stack down 2>/dev/null
	rm -rf var

-include $(shell find build -name '*.d' 2>/dev/null)
