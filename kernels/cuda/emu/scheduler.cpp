// The execution model of the CUDA host emulator: a grid's blocks run one after another on the
// calling OS thread; the threads of a block are fibers (Boost.Context) switched by the scheduler
// below at every __syncthreads, warp shuffle, vote and __syncwarp.
//
// Threads start in schedule order (SAMX_CUDA_EMU_SCHEDULE=forward|reverse|random:SEED) inside a
// "runner" fiber that runs them one after another as plain calls; only a thread that reaches a
// rendezvous keeps the fiber it runs on (a new runner takes over the threads not yet started).
// A kernel without barriers therefore costs one function call per thread, and one that has them
// still sees every interleaving the schedule asks for: a barrier releases its threads in schedule
// order, and a thread runs until it blocks or exits.
//
// Checked here, each an error naming the kernel, its launch site and the call sites involved:
// __syncthreads reached at different call sites by the threads of a block (divergent barrier);
// a block whose live threads all wait but can never be released (deadlock); a warp operation whose
// mask names an exited or absent lane, omits the calling lane, or differs between the lanes it
// names; a shuffle reading a lane outside the mask.
#include <boost/context/detail/fcontext.hpp>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "emu_internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace ctx = boost::context::detail;

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// Bounds of the static __shared__ section (weak: a binary may have no static shared memory).
extern "C" char __start_samx_shared[] __attribute__((weak));
extern "C" char __stop_samx_shared[] __attribute__((weak));

namespace samx_emu {

namespace {

enum State { PENDING, RUNNING, READY, AT_BAR, AT_WARP, DONE };

struct Fiber {
  ctx::fcontext_t ctx = nullptr;
  char *stack = nullptr;  // lowest usable address (a guard page lies below)
  size_t size = 0;
  void *fake_stack = nullptr;  // ASan's fake stack while switched away
};

struct Thread {
  State st;
  Fiber *fiber;  // the fiber this thread keeps once it has blocked
  const char *file;
  int line;
  WarpOp op;
  unsigned mask;
  int b, width;
  uint64_t value, result;
  const char *coll_name;  // OP_COLLECTIVE: the operation's name and body
  WarpCollectiveFn coll_fn;
};

struct Sched {
  const LaunchSpec *spec = nullptr;
  int n = 0;  // threads per block
  std::vector<Thread> th;
  std::vector<int> order;  // schedule order of thread ids
  std::vector<int> ready;  // released threads, run in this order
  size_t ready_head = 0;
  // Lanes released by a warp operation run before `ready`: a warp runs ahead of the others until it
  // reaches a block barrier, so a missing __syncthreads between warps shows (random: by coin flip).
  std::vector<int> warp_ready;
  size_t warp_ready_head = 0;
  int next_pending = 0, live = 0, bar_arrived = 0, cur = -1;
  // Per warp: the open rendezvous (lanes arrived, the mask they named; at most kGroups at once, for
  // disjoint masks), and the lanes that have exited.
  struct Warp {
    unsigned arrived[4], mask[4], done, present;
  };
  std::vector<Warp> warps;
  Fiber *cur_fiber = nullptr;
  ctx::fcontext_t sched_ctx = nullptr;
  std::vector<Fiber *> idle, all;
  bool fault = false;
  std::string fault_msg;
  uint3 block;
  // The schedule.
  int kind = -1;  // 0 forward, 1 reverse, 2 random
  std::mt19937_64 rng;
  // ASan: the scheduler's (OS thread's) stack, learnt at the first switch into a fiber.
  const void *main_bottom = nullptr;
  size_t main_size = 0;
  void *main_fake = nullptr;
};

Sched S;
std::string g_last_fault;
char *g_dyn_smem = nullptr;

#ifdef __SANITIZE_ADDRESS__
const size_t kStackSize = 1 << 20, kSmemGuard = 0;
#else
const size_t kStackSize = 256 << 10, kSmemGuard = 256;
#endif

// Parses forward | reverse | random:SEED; returns 0, or -1 for a malformed spec.
int set_schedule(const char *e) {
  if (!e || !*e || strcmp(e, "forward") == 0) {
    S.kind = 0;
  } else if (strcmp(e, "reverse") == 0) {
    S.kind = 1;
  } else if (strncmp(e, "random:", 7) == 0 && e[7]) {
    char *end;
    unsigned long long seed = strtoull(e + 7, &end, 10);
    if (*end) return -1;
    S.kind = 2;
    S.rng.seed(seed);
  } else {
    return -1;
  }
  return 0;
}

void load_schedule() {
  if (S.kind >= 0) return;
  const char *e = getenv("SAMX_CUDA_EMU_SCHEDULE");
  if (set_schedule(e) != 0) {
    fprintf(stderr, "samx: SAMX_CUDA_EMU_SCHEDULE=%s: expected forward, reverse or random:SEED (SEED an integer)\n", e);
    exit(2);
  }
}

// Ids 0..n-1 in the order the schedule gives.
void schedule_order(std::vector<int> &v, int n) {
  v.resize(n);
  for (int i = 0; i < n; i++) v[i] = S.kind == 1 ? n - 1 - i : i;
  if (S.kind == 2) std::shuffle(v.begin(), v.end(), S.rng);
}

void set_thread_idx(int t) {
  S.cur = t;
  unsigned bx = blockDim.x, by = blockDim.y;
  threadIdx.x = t % bx;
  threadIdx.y = (t / bx) % by;
  threadIdx.z = t / (bx * by);
}

std::string site(const char *file, int line) {
  const char *slash = file ? strrchr(file, '/') : nullptr;
  return std::string(slash ? slash + 1 : (file ? file : "?")) + ":" + std::to_string(line);
}

const char *op_name(WarpOp op) {
  static const char *names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                "__syncwarp",  "__ballot_sync",  "__any_sync",       "__all_sync",
                                "warp collective"};
  return names[op];
}

// The name of what a waiting thread called (a collective by its own name).
const char *op_name(const Thread &x) { return x.op == OP_COLLECTIVE ? x.coll_name : op_name(x.op); }

std::string thread_name(int t) {
  unsigned bx = blockDim.x, by = blockDim.y;
  char buf[96];
  if (blockDim.y == 1 && blockDim.z == 1)
    snprintf(buf, sizeof buf, "thread %d (warp %d lane %d)", t, t / 32, t % 32);
  else
    snprintf(buf, sizeof buf, "thread (%u,%u,%u) (warp %d lane %d)", t % bx, (t / bx) % by, t / (bx * by), t / 32,
             t % 32);
  return buf;
}

// ---- fibers ----

void fiber_main(ctx::transfer_t t);

void switch_annotated_start(void **fake, const void *bottom, size_t size) {
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

void switch_annotated_finish(void *fake, const void **bottom, size_t *size) {
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

void fiber_reset(Fiber *f) {
#ifdef __SANITIZE_ADDRESS__
  // Frames abandoned by a fault leave their redzones poisoned.
  __asan_unpoison_memory_region(f->stack, f->size);
#endif
  f->ctx = ctx::make_fcontext(f->stack + f->size, f->size, fiber_main);
  f->fake_stack = nullptr;
}

Fiber *fiber_get() {
  if (!S.idle.empty()) {
    Fiber *f = S.idle.back();
    S.idle.pop_back();
    return f;
  }
  long page = sysconf(_SC_PAGESIZE);
  size_t bytes = kStackSize + page;
  char *mem = (char *)mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    fprintf(stderr, "samx: CUDA emulator: cannot map a %zu KiB fiber stack\n", bytes >> 10);
    abort();
  }
  mprotect(mem, page, PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
  Fiber *f = new Fiber;
  f->stack = mem + page;
  f->size = kStackSize;
  fiber_reset(f);
  S.all.push_back(f);
  return f;
}

// From a fiber back to the scheduler; `idle` says the fiber has no thread left to run.
void to_scheduler(bool idle) {
  Fiber *f = S.cur_fiber;
  switch_annotated_start(&f->fake_stack, S.main_bottom, S.main_size);
  ctx::transfer_t t = ctx::jump_fcontext(S.sched_ctx, idle ? (void *)1 : nullptr);
  S.sched_ctx = t.fctx;
  switch_annotated_finish(f->fake_stack, &S.main_bottom, &S.main_size);
}

// From the scheduler into fiber f; returns whether f came back idle.
bool resume(Fiber *f) {
  S.cur_fiber = f;
  switch_annotated_start(&S.main_fake, f->stack, f->size);
  ctx::transfer_t t = ctx::jump_fcontext(f->ctx, nullptr);
  switch_annotated_finish(S.main_fake, nullptr, nullptr);
  f->ctx = t.fctx;
  return t.data != nullptr;
}

// ---- faults ----

void fault_here(const std::string &msg);

std::string kernel_label() {
  char buf[160];
  snprintf(buf, sizeof buf, "kernel %s (launched at %s), block (%u,%u,%u): ", S.spec->name,
           site(S.spec->file, S.spec->line).c_str(), S.block.x, S.block.y, S.block.z);
  return buf;
}

// Records the first fault of the launch; the scheduler abandons the block.
void record_fault(const std::string &msg) {
  if (S.fault) return;
  S.fault = true;
  S.fault_msg = kernel_label() + msg;
}

// A fault found while a GPU thread runs: record it and leave the thread's fiber for good.
void fault_here(const std::string &msg) {
  record_fault(msg);
  S.th[S.cur].fiber = S.cur_fiber;  // abandoned: reset by the scheduler
  to_scheduler(false);
  abort();  // never resumed
}

// The threads at barriers and warp operations, grouped by call site, for the error messages.
std::string describe_waiters() {
  struct Group {
    std::string what;
    int count, first;
  };
  std::vector<Group> groups;
  for (int t = 0; t < S.n; t++) {
    const Thread &x = S.th[t];
    std::string what;
    if (x.st == AT_BAR) {
      what = "__syncthreads at " + site(x.file, x.line);
    } else if (x.st == AT_WARP) {
      char m[16];
      snprintf(m, sizeof m, "0x%08x", x.mask);
      what = std::string(op_name(x)) + " (mask " + m + ") at " + site(x.file, x.line);
    } else {
      continue;
    }
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group &g) { return g.what == what; });
    if (it == groups.end())
      groups.push_back({what, 1, t});
    else
      it->count++;
  }
  std::string s;
  for (auto &g : groups)
    s += "\n  " + std::to_string(g.count) + " thread(s) wait at " + g.what + ", first " + thread_name(g.first);
  return s;
}

// ---- barriers ----

void release(int t) {
  S.th[t].st = READY;
  S.ready.push_back(t);
}

void release_lane(int t, bool ahead) {
  S.th[t].st = READY;
  (ahead ? S.warp_ready : S.ready).push_back(t);
}

// Releases the block barrier once every live thread has reached it.
void check_barrier() {
  if (S.bar_arrived == 0 || S.bar_arrived < S.live) return;
  const Thread *first = nullptr;
  for (int t = 0; t < S.n; t++) {
    const Thread &x = S.th[t];
    if (x.st != AT_BAR) continue;
    if (!first) {
      first = &x;
    } else if (x.line != first->line || strcmp(x.file, first->file) != 0) {
      record_fault("divergent __syncthreads: the threads of the block wait at different barriers" +
                   describe_waiters());
      return;
    }
  }
  std::vector<int> order;
  if (S.kind == 2) schedule_order(order, S.n);
  for (int i = 0; i < S.n; i++) {
    int t = S.kind == 2 ? order[i] : S.order[i];
    if (S.th[t].st == AT_BAR) release(t);
  }
  S.bar_arrived = 0;
}

// The current thread waits until the scheduler releases it.
void block_current() {
  Thread &x = S.th[S.cur];
  x.fiber = S.cur_fiber;
  int me = S.cur;
  to_scheduler(false);
  set_thread_idx(me);
}

// ---- warp operations ----

uint64_t shfl_result(const Thread &x, int lane, int warp0) {
  if (x.op == OP_SYNCWARP || x.op == OP_COLLECTIVE) return 0;
  if (x.op >= OP_BALLOT) {
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
      if ((x.mask >> l & 1u) && S.th[warp0 + l].value) ballot |= 1u << l;
    if (x.op == OP_BALLOT) return ballot;
    if (x.op == OP_ANY) return ballot != 0;
    return ballot == x.mask;
  }
  // PTX shfl.sync: c = ((32 - width) << 8) | clamp, segmask = c[12:8].
  unsigned segmask = (unsigned)(32 - x.width) & 31u, clamp = x.op == OP_SHFL_UP ? 0u : 31u;
  unsigned min_lane = (unsigned)lane & segmask, max_lane = min_lane | (clamp & ~segmask);
  int j;
  bool ok;
  switch (x.op) {
    case OP_SHFL_UP: j = lane - x.b, ok = j >= (int)max_lane; break;
    case OP_SHFL_DOWN: j = lane + x.b, ok = j <= (int)max_lane; break;
    case OP_SHFL_XOR: j = lane ^ x.b, ok = j <= (int)max_lane; break;
    default: j = (int)(min_lane | ((unsigned)x.b & 31u & ~segmask)), ok = j <= (int)max_lane; break;
  }
  if (!ok) j = lane;
  if (!(x.mask >> j & 1u)) {
    char m[200];
    snprintf(m, sizeof m, "%s at %s: lane %d reads lane %d, which the mask 0x%08x does not name", op_name(x.op),
             site(x.file, x.line).c_str(), lane, j, x.mask);
    record_fault(m);
    return 0;
  }
  return S.th[warp0 + j].value;
}

void warp_fault(const Thread &x, int lane, const char *why, int other) {
  char m[320];
  snprintf(m, sizeof m, "%s (mask 0x%08x) at %s by lane %d: %s lane %d", op_name(x), x.mask,
           site(x.file, x.line).c_str(), lane, why, other);
  fault_here(m);
}

}  // namespace

void syncthreads(const char *file, int line) {
  Thread &x = S.th[S.cur];
  x.st = AT_BAR, x.file = file, x.line = line;
  S.bar_arrived++;
  check_barrier();
  if (S.fault) fault_here("");
  block_current();
}

namespace {

uint64_t warp_rendezvous(WarpOp op, unsigned mask, uint64_t value, int b, int width, const char *file, int line,
                         const char *coll_name, WarpCollectiveFn coll_fn) {
  const int t = S.cur, lane = t % 32, warp0 = t - lane;
  Sched::Warp &w = S.warps[t / 32];
  Thread &x = S.th[t];
  x.op = op, x.mask = mask, x.value = value, x.b = b, x.width = width, x.file = file, x.line = line;
  x.coll_name = coll_name, x.coll_fn = coll_fn;
  if (!(mask >> lane & 1u)) warp_fault(x, lane, "the mask does not name the calling", lane);
  if (width < 1 || width > 32 || (width & (width - 1)))
    warp_fault(x, lane, "width must be a power of two <= 32, called by", lane);
  // Every lane the mask names must exist and be alive.
  if (mask & ~w.present) warp_fault(x, lane, "the mask names an absent (past blockDim)", __builtin_ctz(mask & ~w.present));
  if (mask & w.done) warp_fault(x, lane, "the mask names an exited", __builtin_ctz(mask & w.done));
  // Join the open rendezvous of this mask; one that overlaps it with another mask is a disagreement.
  int g = -1, free_g = -1;
  for (int i = 0; i < 4; i++) {
    if (!w.arrived[i]) {
      if (free_g < 0) free_g = i;
    } else if (w.mask[i] == mask) {
      g = i;
    } else if (w.mask[i] & mask) {
      const Thread &y = S.th[warp0 + __builtin_ctz(w.arrived[i])];
      char m[400];
      snprintf(m, sizeof m, "lanes of warp %d disagree: lane %d calls %s (mask 0x%08x) at %s while lane %d waits "
               "at %s (mask 0x%08x) at %s", t / 32, lane, op_name(x), mask, site(file, line).c_str(),
               __builtin_ctz(w.arrived[i]), op_name(y), y.mask, site(y.file, y.line).c_str());
      fault_here(m);
    }
  }
  if (g < 0) {
    if (free_g < 0) warp_fault(x, lane, "more than 4 concurrent partial-warp operations; called by", lane);
    g = free_g, w.mask[g] = mask;
  } else {
    const Thread &y = S.th[warp0 + __builtin_ctz(w.arrived[g])];
    if (y.op != op || y.coll_fn != coll_fn) {
      char m[400];
      snprintf(m, sizeof m, "lanes of warp %d disagree: lane %d calls %s at %s, lane %d calls %s at %s (mask 0x%08x)",
               t / 32, lane, op_name(x), site(file, line).c_str(), __builtin_ctz(w.arrived[g]), op_name(y),
               site(y.file, y.line).c_str(), mask);
      fault_here(m);
    }
  }
  w.arrived[g] |= 1u << lane;
  x.st = AT_WARP;
  if (w.arrived[g] != mask) {
    block_current();
    return S.th[S.cur].result;
  }
  // The last lane to arrive computes every lane's result, releases the others and goes on.
  w.arrived[g] = 0;
  if (op == OP_COLLECTIVE) {
    void *lane_data[32];
    for (int l = 0; l < 32; l++) lane_data[l] = (void *)(uintptr_t)S.th[warp0 + l].value;
    if (const char *err = coll_fn(lane_data)) fault_here(std::string(coll_name) + " at " + site(file, line) + ": " + err);
  }
  for (unsigned m = mask; m; m &= m - 1) {
    int l = __builtin_ctz(m);
    S.th[warp0 + l].result = shfl_result(S.th[warp0 + l], l, warp0);
  }
  if (S.fault) fault_here("");
  x.st = RUNNING;
  const bool ahead = S.kind != 2 || (S.rng() & 1);
  for (int i = 0; i < 32; i++) {
    int l = S.kind == 1 ? 31 - i : i;
    if (l != lane && (mask >> l & 1u)) release_lane(warp0 + l, ahead);
  }
  return x.result;
}

}  // namespace

uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int b, int width, const char *file, int line) {
  return warp_rendezvous(op, mask, value, b, width, file, line, nullptr, nullptr);
}

void warp_collective(const char *name, WarpCollectiveFn fn, void *data, const char *file, int line) {
  warp_rendezvous(OP_COLLECTIVE, 0xffffffffu, (uint64_t)(uintptr_t)data, 0, 32, file, line, name, fn);
}

unsigned active_mask() {
  const int lane = S.cur % 32, warp0 = S.cur - lane;
  unsigned m = 0;
  for (int l = 0; l < 32 && warp0 + l < S.n; l++)
    if (S.th[warp0 + l].st != DONE) m |= 1u << l;
  return m;
}

char *dynamic_shared() { return g_dyn_smem; }

namespace {

// A thread returned from the kernel: it no longer counts at the barrier, and no lane may wait for it.
void thread_exit(int t) {
  S.th[t].st = DONE;
  S.live--;
  const int lane = t % 32;
  Sched::Warp &w = S.warps[t / 32];
  w.done |= 1u << lane;
  for (int i = 0; i < 4; i++) {
    if (w.arrived[i] && (w.mask[i] >> lane & 1u)) {
      const Thread &y = S.th[t - lane + __builtin_ctz(w.arrived[i])];
      char m[320];
      snprintf(m, sizeof m, "lane %d exited while lane %d waits for it at %s (mask 0x%08x) at %s", lane,
               __builtin_ctz(w.arrived[i]), op_name(y), y.mask, site(y.file, y.line).c_str());
      record_fault(m);
      return;
    }
  }
  check_barrier();
}

void fiber_main(ctx::transfer_t t) {
  S.sched_ctx = t.fctx;
  Fiber *f = S.cur_fiber;
  switch_annotated_finish(f->fake_stack, &S.main_bottom, &S.main_size);
  for (;;) {
    while (S.next_pending < S.n && !S.fault) {
      int tid = S.order[S.next_pending++];
      S.th[tid].st = RUNNING;
      set_thread_idx(tid);
      S.spec->thunk(S.spec->args);
      thread_exit(S.cur);
      f = S.cur_fiber;  // this fiber may have been resumed for another thread meanwhile
    }
    to_scheduler(true);
  }
}

// 0xff bytes: NaN as float and double, -1 as an integer. Not instrumented and never turned into a
// memset call: the static shared section holds ASan's redzones between its variables.
__attribute__((no_sanitize_address, optimize("no-tree-loop-distribute-patterns"))) void fill_nan(char *p, size_t n) {
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 7); i++) ((volatile char *)p)[i] = (char)0xff;
  for (; i + 8 <= n; i += 8) *(volatile uint64_t *)(p + i) = ~(uint64_t)0;
  for (; i < n; i++) ((volatile char *)p)[i] = (char)0xff;
}

void run_block() {
  S.ready.clear();
  S.ready_head = 0;
  S.warp_ready.clear();
  S.warp_ready_head = 0;
  S.next_pending = 0;
  S.live = S.n;
  S.bar_arrived = 0;
  for (auto &x : S.th) x.st = PENDING, x.fiber = nullptr;
  for (size_t i = 0; i < S.warps.size(); i++) {
    int lanes = S.n - 32 * (int)i;
    S.warps[i] = Sched::Warp{{0, 0, 0, 0}, {0, 0, 0, 0}, 0, lanes >= 32 ? ~0u : (1u << lanes) - 1};
  }
  if (S.kind == 2) schedule_order(S.order, S.n);
  if (__start_samx_shared && __stop_samx_shared > __start_samx_shared)
    fill_nan(__start_samx_shared, (size_t)(__stop_samx_shared - __start_samx_shared));
  if (S.spec->smem) fill_nan(g_dyn_smem, S.spec->smem + kSmemGuard);
  for (;;) {
    if (S.fault) break;
    Fiber *f;
    if (S.warp_ready_head < S.warp_ready.size() || S.ready_head < S.ready.size()) {
      int t;
      if (S.warp_ready_head < S.warp_ready.size()) {
        t = S.warp_ready[S.warp_ready_head++];
        if (S.warp_ready_head == S.warp_ready.size()) S.warp_ready.clear(), S.warp_ready_head = 0;
      } else {
        t = S.ready[S.ready_head++];
        if (S.ready_head == S.ready.size()) S.ready.clear(), S.ready_head = 0;  // no unbounded growth
      }
      S.th[t].st = RUNNING;
      f = S.th[t].fiber;
      S.th[t].fiber = nullptr;
      set_thread_idx(t);
    } else if (S.next_pending < S.n) {
      f = fiber_get();
    } else {
      break;
    }
    if (resume(f)) S.idle.push_back(f);
  }
  if (!S.fault && S.live > 0)
    record_fault("the block can never finish: its live threads all wait and none can be released" +
                 describe_waiters());
  for (size_t i = 0; i < kSmemGuard && S.spec->smem && !S.fault; i++)
    if (g_dyn_smem[S.spec->smem + i] != (char)0xff)
      record_fault("a thread wrote " + std::to_string(i + 1) + " byte(s) past the " + std::to_string(S.spec->smem) +
                   " bytes of dynamic shared memory");
  if (S.fault) {
    // Fibers of threads that never finished are abandoned; their stacks start afresh.
    for (auto &x : S.th)
      if (x.fiber) fiber_reset(x.fiber), S.idle.push_back(x.fiber), x.fiber = nullptr;
  }
}

std::mutex g_launch_mutex;

}  // namespace

// Runs a whole grid; returns the fault text ("" when it ran through).
std::string run_grid(const LaunchSpec &spec) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  load_schedule();
  if (S.spec) {
    fprintf(stderr, "samx: CUDA emulator: kernel %s launched from inside kernel %s (dynamic parallelism is not "
            "emulated)\n", spec.name, S.spec->name);
    abort();
  }
  S.spec = &spec;
  S.fault = false;
  S.n = (int)(spec.block.x * spec.block.y * spec.block.z);
  S.th.assign(S.n, Thread{});
  S.warps.resize((S.n + 31) / 32);
  schedule_order(S.order, S.n);
  blockDim = spec.block;
  gridDim = spec.grid;
  // Exactly the launch's size under ASan, which then reports the first byte past it; otherwise a
  // NaN-filled guard follows it (reads past the end give NaN, writes are found after the block).
  char *dyn_mem = spec.smem ? (char *)malloc(spec.smem + kSmemGuard) : nullptr;
  g_dyn_smem = dyn_mem;
  const uint64_t gx = spec.grid.x, gy = spec.grid.y, nb = gx * gy * spec.grid.z;
  // Blocks run in schedule order too (an inter-block dependence shows up as a changed result).
  std::vector<uint64_t> perm;
  if (S.kind == 2 && nb > 1 && nb <= (1u << 22)) {
    perm.resize(nb);
    for (uint64_t i = 0; i < nb; i++) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), S.rng);
  }
  for (uint64_t i = 0; i < nb && !S.fault; i++) {
    uint64_t b = !perm.empty() ? perm[i] : (S.kind == 1 ? nb - 1 - i : i);
    S.block = uint3{(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / (gx * gy))};
    blockIdx = S.block;
    run_block();
  }
  free(dyn_mem);
  g_dyn_smem = nullptr;
  S.spec = nullptr;
  if (S.fault) g_last_fault = S.fault_msg;
  return S.fault ? S.fault_msg : std::string();
}

}  // namespace samx_emu

extern "C" const char *samx_cuda_emu_last_fault(void) { return samx_emu::g_last_fault.c_str(); }

extern "C" int samx_cuda_emu_set_schedule(const char *spec) { return samx_emu::set_schedule(spec); }
