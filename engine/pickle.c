#include "pickle.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

#define PK_MAX_STACK (1 << 20)
#define PK_MAX_MEMO (1 << 22)

// Everything a parse allocates: values (with their item arrays) and string buffers.
struct PkArena {
  void **ptrs;
  size_t n, cap;
  PkValue **values;
  size_t n_values, cap_values;
};

static void *arena_add(PkArena *a, void *p) {
  if (!p) return NULL;
  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 256;
    a->ptrs = (void **)realloc(a->ptrs, a->cap * sizeof(void *));
  }
  a->ptrs[a->n++] = p;
  return p;
}

void samx_pickle_free(PkArena *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++) free(a->ptrs[i]);
  for (size_t i = 0; i < a->n_values; i++) {
    free(a->values[i]->items);
    free(a->values[i]);
  }
  free(a->ptrs);
  free(a->values);
  free(a);
}

typedef struct {
  const unsigned char *p;
  size_t n, pos;
  const char *what;
  PkArena *arena;
  PkValue **stack;
  int sp, stack_cap;
  PkValue **memo;
  int64_t memo_cap;
} Vm;

static PkValue *new_value(Vm *vm, PkType t) {
  PkArena *a = vm->arena;
  if (a->n_values == a->cap_values) {
    a->cap_values = a->cap_values ? 2 * a->cap_values : 256;
    a->values = (PkValue **)realloc(a->values, a->cap_values * sizeof(PkValue *));
  }
  PkValue *v = (PkValue *)calloc(1, sizeof(PkValue));
  a->values[a->n_values++] = v;
  v->type = t;
  return v;
}

static int fail_at(Vm *vm, const char *msg) {
  return samx_fail("%s: corrupt or unsupported pickle at byte %zu: %s", vm->what, vm->pos, msg);
}

static int need(Vm *vm, size_t k) { return vm->pos + k <= vm->n ? 0 : fail_at(vm, "truncated"); }

static uint64_t read_le(Vm *vm, int k) {
  uint64_t v = 0;
  for (int i = k - 1; i >= 0; i--) v = (v << 8) | vm->p[vm->pos + i];
  vm->pos += k;
  return v;
}

static int push(Vm *vm, PkValue *v) {
  if (vm->sp == vm->stack_cap) {
    if (vm->stack_cap >= PK_MAX_STACK) return fail_at(vm, "stack too deep");
    vm->stack_cap = vm->stack_cap ? 2 * vm->stack_cap : 64;
    vm->stack = (PkValue **)realloc(vm->stack, (size_t)vm->stack_cap * sizeof(PkValue *));
  }
  vm->stack[vm->sp++] = v;
  return 0;
}

static PkValue *pop(Vm *vm) {
  if (vm->sp == 0) {
    fail_at(vm, "stack underflow");
    return NULL;
  }
  PkValue *v = vm->stack[--vm->sp];
  if (v->type == PK_MARK) {
    fail_at(vm, "unexpected MARK");
    return NULL;
  }
  return v;
}

static PkValue *top(Vm *vm) {
  if (vm->sp == 0 || vm->stack[vm->sp - 1]->type == PK_MARK) {
    fail_at(vm, "stack underflow");
    return NULL;
  }
  return vm->stack[vm->sp - 1];
}

// Index of the topmost MARK, or -1.
static int find_mark(Vm *vm) {
  for (int i = vm->sp - 1; i >= 0; i--)
    if (vm->stack[i]->type == PK_MARK) return i;
  fail_at(vm, "MARK expected");
  return -1;
}

static void append_item(PkValue *c, PkValue *v) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 8;
    c->items = (PkValue **)realloc(c->items, (size_t)c->cap * sizeof(PkValue *));
  }
  c->items[c->n++] = v;
}

static PkValue *new_container(Vm *vm, PkType t) { return new_value(vm, t); }

static PkValue *make_string(Vm *vm, PkType t, size_t len) {
  if (need(vm, len)) return NULL;
  PkValue *v = new_value(vm, t);
  v->s = (char *)arena_add(vm->arena, malloc(len + 1));
  memcpy(v->s, vm->p + vm->pos, len);
  v->s[len] = 0;
  v->len = len;
  vm->pos += len;
  return v;
}

static int memo_put(Vm *vm, int64_t idx, PkValue *v) {
  if (idx < 0 || idx >= PK_MAX_MEMO) return fail_at(vm, "memo index out of range");
  if (idx >= vm->memo_cap) {
    int64_t cap = vm->memo_cap ? vm->memo_cap : 64;
    while (cap <= idx) cap *= 2;
    vm->memo = (PkValue **)realloc(vm->memo, (size_t)cap * sizeof(PkValue *));
    memset(vm->memo + vm->memo_cap, 0, (size_t)(cap - vm->memo_cap) * sizeof(PkValue *));
    vm->memo_cap = cap;
  }
  vm->memo[idx] = v;
  return 0;
}

static int memo_get(Vm *vm, int64_t idx) {
  if (idx < 0 || idx >= vm->memo_cap || !vm->memo[idx]) return fail_at(vm, "memo reference to an unset slot");
  return push(vm, vm->memo[idx]);
}

// The allow-list: callables a state dict needs, and the storage classes of persistent ids.
static const struct {
  const char *name;
  int storage_dtype;  // -1: a callable, else the storage's element type; -2: storage of an unsupported type
} allowed[] = {
    {"collections.OrderedDict", -1},    {"torch._utils._rebuild_tensor_v2", -1}, {"torch._utils._rebuild_parameter", -1},
    {"torch.FloatStorage", SAMX_F32},  {"torch.HalfStorage", SAMX_F16},        {"torch.BFloat16Storage", SAMX_BF16},
    {"torch.IntStorage", SAMX_I32},    {"torch.LongStorage", SAMX_I64},        {"torch.ByteStorage", SAMX_U8},
    {"torch.DoubleStorage", -2},       {"torch.BoolStorage", -2},              {"torch.CharStorage", -2},
    {"torch.ShortStorage", -2},
    // numpy arrays as ndarray.__reduce__ writes them (protocols 2-4): _reconstruct(ndarray, (0,), b'b')
    // then BUILD with (version, shape, dtype, is_fortran, raw bytes); numpy 2 moved the module to _core.
    // Under protocol 2 the bytes come as _codecs.encode(text, 'latin1').
    {"numpy.core.multiarray._reconstruct", -1}, {"numpy._core.multiarray._reconstruct", -1},
    {"numpy.ndarray", -1}, {"numpy.dtype", -1}, {"_codecs.encode", -1},
};

static int allowed_index(const char *name) {
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
    if (!strcmp(allowed[i].name, name)) return (int)i;
  return -1;
}

static int push_global(Vm *vm, const char *module, const char *name) {
  char full[512];
  snprintf(full, sizeof full, "%s.%s", module, name);
  if (allowed_index(full) < 0)
    return samx_fail("%s: pickle refers to the global '%s', which a state dict or a dict of numpy arrays never "
                     "needs; refusing to load (only tensors, numpy arrays, dicts and lists are accepted)",
                     vm->what, full);
  PkValue *g = new_value(vm, PK_GLOBAL);
  g->s = (char *)arena_add(vm->arena, strdup(full));
  return push(vm, g);
}

static int read_line(Vm *vm, char *buf, size_t cap) {
  size_t i = 0;
  while (vm->pos < vm->n && vm->p[vm->pos] != '\n') {
    if (i + 1 >= cap) return fail_at(vm, "GLOBAL name too long");
    buf[i++] = (char)vm->p[vm->pos++];
  }
  if (vm->pos >= vm->n) return fail_at(vm, "truncated GLOBAL");
  vm->pos++;
  buf[i] = 0;
  return 0;
}

static int int_tuple(const PkValue *t, int64_t *out, int max) {
  if (!t || t->type != PK_TUPLE || t->n > max) return -1;
  for (int i = 0; i < t->n; i++) {
    if (t->items[i]->type != PK_INT) return -1;
    out[i] = t->items[i]->i;
  }
  return t->n;
}

static PkValue *rebuild_tensor(Vm *vm, PkValue *args) {
  if (args->n < 4 || args->items[0]->type != PK_STORAGE || args->items[1]->type != PK_INT) {
    fail_at(vm, "_rebuild_tensor_v2 with unexpected arguments");
    return NULL;
  }
  PkValue *t = new_value(vm, PK_TENSOR);
  t->storage = args->items[0];
  t->dtype = t->storage->dtype;
  t->offset = args->items[1]->i;
  int nd = int_tuple(args->items[2], t->shape, SAMX_MAX_DIMS);
  int ns = int_tuple(args->items[3], t->stride, SAMX_MAX_DIMS);
  if (nd < 0 || ns != nd) {
    fail_at(vm, "tensor size/stride is not a tuple of at most 5 integers");
    return NULL;
  }
  t->ndim = nd;
  return t;
}

// numpy.dtype('f4', False, True): plain number types only (no structured, string or object dtypes).
static PkValue *numpy_dtype(Vm *vm, PkValue *args) {
  if (args->n < 1 || args->items[0]->type != PK_STR) {
    fail_at(vm, "numpy.dtype with unexpected arguments");
    return NULL;
  }
  const char *code = args->items[0]->s;
  char kind = code[0];
  char *end;
  long size = strtol(code + (kind ? 1 : 0), &end, 10);
  int ok = *end == 0 && ((kind == 'f' && (size == 4 || size == 8)) || ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
                         (kind == 'b' && size == 1));
  if (!ok) {
    samx_fail("%s: numpy dtype '%s' is not supported (float32/64, integers, bool)", vm->what, code);
    return NULL;
  }
  PkValue *d = new_value(vm, PK_NPDTYPE);
  d->np_kind = kind;
  d->np_itemsize = (int)size;
  return d;
}

// _codecs.encode(text, 'latin1'): protocol 2's spelling of bytes; text is UTF-8 of code points < 256.
static PkValue *latin1_bytes(Vm *vm, PkValue *args) {
  if (args->n != 2 || args->items[0]->type != PK_STR || args->items[1]->type != PK_STR ||
      (strcmp(args->items[1]->s, "latin1") && strcmp(args->items[1]->s, "latin-1"))) {
    fail_at(vm, "_codecs.encode other than (str, 'latin1')");
    return NULL;
  }
  const unsigned char *t = (const unsigned char *)args->items[0]->s;
  size_t n = args->items[0]->len, k = 0;
  PkValue *b = new_value(vm, PK_BYTES);
  b->s = (char *)arena_add(vm->arena, malloc(n + 1));
  for (size_t i = 0; i < n; i++) {
    if (t[i] < 0x80) {
      b->s[k++] = (char)t[i];
    } else if ((t[i] == 0xc2 || t[i] == 0xc3) && i + 1 < n && (t[i + 1] & 0xc0) == 0x80) {
      b->s[k++] = (char)(((t[i] & 0x1f) << 6) | (t[i + 1] & 0x3f));
      i++;
    } else {
      fail_at(vm, "latin1 text holds a character above U+00FF");
      return NULL;
    }
  }
  b->s[k] = 0;
  b->len = k;
  return b;
}

static PkValue *numpy_reconstruct(Vm *vm, PkValue *args) {
  if (args->n != 3 || args->items[0]->type != PK_GLOBAL || strcmp(args->items[0]->s, "numpy.ndarray")) {
    fail_at(vm, "_reconstruct of something other than numpy.ndarray");
    return NULL;
  }
  return new_value(vm, PK_NDARRAY);  // filled by BUILD
}

static int do_reduce(Vm *vm) {
  PkValue *args = pop(vm), *fn = pop(vm);
  if (!args || !fn) return -1;
  if (fn->type != PK_GLOBAL || args->type != PK_TUPLE) return fail_at(vm, "REDUCE of a non-callable");
  PkValue *r = NULL;
  if (!strcmp(fn->s, "collections.OrderedDict")) {
    r = new_container(vm, PK_DICT);
  } else if (!strcmp(fn->s, "torch._utils._rebuild_tensor_v2")) {
    r = rebuild_tensor(vm, args);
  } else if (!strcmp(fn->s, "numpy.core.multiarray._reconstruct") || !strcmp(fn->s, "numpy._core.multiarray._reconstruct")) {
    r = numpy_reconstruct(vm, args);
  } else if (!strcmp(fn->s, "numpy.dtype")) {
    r = numpy_dtype(vm, args);
  } else if (!strcmp(fn->s, "_codecs.encode")) {
    r = latin1_bytes(vm, args);
  } else if (!strcmp(fn->s, "torch._utils._rebuild_parameter")) {
    if (args->n < 1 || args->items[0]->type != PK_TENSOR) return fail_at(vm, "_rebuild_parameter of a non-tensor");
    r = args->items[0];
  } else {
    return samx_fail("%s: pickle calls '%s', which is not a constructor samx accepts", vm->what, fn->s);
  }
  return r ? push(vm, r) : -1;
}

// ('storage', torch.XStorage, key, location, numel)
static int do_persid(Vm *vm) {
  PkValue *pid = pop(vm);
  if (!pid) return -1;
  if (pid->type != PK_TUPLE || pid->n < 5 || pid->items[0]->type != PK_STR || strcmp(pid->items[0]->s, "storage") ||
      pid->items[1]->type != PK_GLOBAL || pid->items[2]->type != PK_STR || pid->items[4]->type != PK_INT)
    return fail_at(vm, "persistent id is not a torch storage reference");
  int k = allowed_index(pid->items[1]->s);
  if (k < 0 || allowed[k].storage_dtype == -1) return fail_at(vm, "persistent id names no storage class");
  if (allowed[k].storage_dtype == -2)
    return samx_fail("%s: storage type %s is not supported (F32, F16, BF16, I32, I64, U8)", vm->what,
                     pid->items[1]->s);
  PkValue *s = new_value(vm, PK_STORAGE);
  s->dtype = (SamxDType)allowed[k].storage_dtype;
  s->s = pid->items[2]->s;
  s->numel = pid->items[4]->i;
  if (s->numel < 0) return fail_at(vm, "negative storage size");
  return push(vm, s);
}

// Moves stack[first..sp) into container c (dict: key/value pairs); rejects stray MARKs.
static int move_items(Vm *vm, PkValue *c, int first) {
  for (int i = first; i < vm->sp; i++) {
    if (vm->stack[i]->type == PK_MARK) return fail_at(vm, "unexpected MARK");
    append_item(c, vm->stack[i]);
  }
  return 0;
}

// SETITEM(S) (is_dict) and APPEND(S): the container sits below the MARK, or below the last item(s).
static int add_items(Vm *vm, int from_mark, int is_dict) {
  int m = from_mark ? find_mark(vm) : vm->sp - (is_dict ? 3 : 2);
  if (m < 0) return from_mark ? -1 : fail_at(vm, "stack underflow");
  int at = from_mark ? m - 1 : m;
  if (at < 0) return fail_at(vm, "SETITEMS/APPENDS without a container");
  PkValue *c = vm->stack[at];
  if (c->type != (is_dict ? PK_DICT : PK_LIST)) return fail_at(vm, is_dict ? "SETITEM on a non-dict" : "APPEND on a non-list");
  if (is_dict && (vm->sp - m - 1) % 2) return fail_at(vm, "odd number of dict items");
  if (move_items(vm, c, m + 1)) return -1;
  vm->sp = at + 1;
  return 0;
}

// TUPLE (k < 0: down to the MARK) and TUPLE1/2/3.
static int make_tuple(Vm *vm, int k) {
  int first = k < 0 ? find_mark(vm) + 1 : vm->sp - k;
  if (first < 0 || (k < 0 && first == 0)) return k < 0 ? -1 : fail_at(vm, "stack underflow");
  PkValue *t = new_container(vm, PK_TUPLE);
  if (move_items(vm, t, first)) return -1;
  vm->sp = k < 0 ? first - 1 : first;
  return push(vm, t);
}

// dtype state (version, byteorder, subarray, names, fields, elsize, alignment, flags): plain types
// have no subarray, names or fields.
static int build_dtype(Vm *vm, PkValue *d, const PkValue *st) {
  if (st->type != PK_TUPLE || st->n < 5 || st->items[0]->type != PK_INT || st->items[1]->type != PK_STR ||
      st->items[2]->type != PK_NONE || st->items[3]->type != PK_NONE || st->items[4]->type != PK_NONE)
    return fail_at(vm, "numpy dtype state is not that of a plain number type");
  const char *order = st->items[1]->s;
  if (strcmp(order, "<") && strcmp(order, ">") && strcmp(order, "|") && strcmp(order, "="))
    return fail_at(vm, "numpy dtype with an unknown byte order");
  d->np_big_endian = !strcmp(order, ">");
  return 0;
}

// Fortran-ordered elements (first index fastest) into C order.
static void fortran_to_c(const char *src, char *dst, const int64_t *shape, int ndim, size_t item, int64_t numel) {
  int64_t idx[SAMX_MAX_DIMS] = {0};
  for (int64_t f = 0; f < numel; f++) {
    int64_t c = 0;
    for (int d = 0; d < ndim; d++) c = c * shape[d] + idx[d];
    memcpy(dst + (size_t)c * item, src + (size_t)f * item, item);
    for (int d = 0; d < ndim && ++idx[d] == shape[d]; d++) idx[d] = 0;
  }
}

// ndarray state (version, shape, dtype, is_fortran, raw bytes): the elements end up in C order and
// native (little-endian) byte order.
static int build_array(Vm *vm, PkValue *a, const PkValue *st) {
  if (st->type != PK_TUPLE || st->n != 5 || st->items[0]->type != PK_INT || st->items[2]->type != PK_NPDTYPE ||
      st->items[3]->type != PK_BOOL || st->items[4]->type != PK_BYTES)
    return fail_at(vm, "numpy array state is not (version, shape, dtype, is_fortran, bytes)");
  int nd = int_tuple(st->items[1], a->shape, SAMX_MAX_DIMS);
  if (nd < 0) return fail_at(vm, "numpy array shape is not a tuple of at most 5 integers");
  const PkValue *dt = st->items[2], *raw = st->items[4];
  a->ndim = nd;
  a->np_kind = dt->np_kind;
  a->np_itemsize = dt->np_itemsize;
  int64_t numel = 1;
  for (int d = 0; d < nd; d++) {
    if (a->shape[d] < 0 || (a->shape[d] > 0 && numel > INT64_MAX / a->shape[d] / 8)) return fail_at(vm, "numpy array shape out of range");
    numel *= a->shape[d];
  }
  size_t item = (size_t)dt->np_itemsize;
  if ((uint64_t)numel * item != raw->len) return fail_at(vm, "numpy array data size does not match its shape and dtype");
  a->len = raw->len;
  a->s = raw->s;
  if (st->items[3]->i && nd > 1) {
    a->s = (char *)arena_add(vm->arena, malloc(raw->len + 1));
    fortran_to_c(raw->s, a->s, a->shape, nd, item, numel);
  }
  if (dt->np_big_endian && item > 1) {
    if (a->s == raw->s) a->s = (char *)arena_add(vm->arena, memcpy(malloc(raw->len + 1), raw->s, raw->len));
    for (int64_t i = 0; i < numel; i++)
      for (size_t j = 0; j < item / 2; j++) {
        char *e = a->s + (size_t)i * item, t = e[j];
        e[j] = e[item - 1 - j], e[item - 1 - j] = t;
      }
  }
  return 0;
}

static int step(Vm *vm, int *done) {
  if (need(vm, 1)) return -1;
  unsigned char op = vm->p[vm->pos++];
  PkValue *v;
  switch (op) {
    case 0x80: return need(vm, 1) ? -1 : (vm->pos++, 0);  // PROTO
    case 0x95: return need(vm, 8) ? -1 : (vm->pos += 8, 0);  // FRAME
    case '}': return push(vm, new_container(vm, PK_DICT));
    case ']': return push(vm, new_container(vm, PK_LIST));
    case ')': return push(vm, new_container(vm, PK_TUPLE));
    case '(': return push(vm, new_value(vm, PK_MARK));
    case 'N': return push(vm, new_value(vm, PK_NONE));
    case 0x88: case 0x89:
      v = new_value(vm, PK_BOOL);
      v->i = op == 0x88;
      return push(vm, v);
    case 'J': case 'K': case 'M': {
      int k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
      if (need(vm, (size_t)k)) return -1;
      v = new_value(vm, PK_INT);
      uint64_t u = read_le(vm, k);
      v->i = op == 'J' ? (int64_t)(int32_t)u : (int64_t)u;
      return push(vm, v);
    }
    case 0x8a: {  // LONG1
      if (need(vm, 1)) return -1;
      int k = vm->p[vm->pos++];
      if (k > 8 || need(vm, (size_t)k)) return fail_at(vm, "integer too large");
      uint64_t u = k ? read_le(vm, k) : 0;
      if (k && k < 8 && (u >> (8 * k - 1)) & 1) u |= ~0ull << (8 * k);  // sign-extend
      v = new_value(vm, PK_INT);
      v->i = (int64_t)u;
      return push(vm, v);
    }
    case 'G': {
      if (need(vm, 8)) return -1;
      uint64_t u = 0;
      for (int i = 0; i < 8; i++) u = (u << 8) | vm->p[vm->pos + i];
      vm->pos += 8;
      v = new_value(vm, PK_FLOAT);
      memcpy(&v->f, &u, 8);
      return push(vm, v);
    }
    case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
      int k = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
      if (need(vm, (size_t)k)) return -1;
      uint64_t len = read_le(vm, k);
      if (len > vm->n) return fail_at(vm, "string length past the end");
      v = make_string(vm, (op == 'B' || op == 'C' || op == 0x8e) ? PK_BYTES : PK_STR, (size_t)len);
      return v ? push(vm, v) : -1;
    }
    case 'q': case 'r': {
      int k = op == 'q' ? 1 : 4;
      if (need(vm, (size_t)k)) return -1;
      int64_t idx = (int64_t)read_le(vm, k);
      PkValue *t = top(vm);
      return t ? memo_put(vm, idx, t) : -1;
    }
    case 0x94: {  // MEMOIZE: next free index
      PkValue *t = top(vm);
      int64_t idx = 0;
      while (idx < vm->memo_cap && vm->memo[idx]) idx++;
      return t ? memo_put(vm, idx, t) : -1;
    }
    case 'h': case 'j': {
      int k = op == 'h' ? 1 : 4;
      if (need(vm, (size_t)k)) return -1;
      return memo_get(vm, (int64_t)read_le(vm, k));
    }
    case 'c': {
      char module[256], name[256];
      if (read_line(vm, module, sizeof module) || read_line(vm, name, sizeof name)) return -1;
      return push_global(vm, module, name);
    }
    case 0x93: {  // STACK_GLOBAL
      PkValue *name = pop(vm), *module = name ? pop(vm) : NULL;
      if (!module || module->type != PK_STR || name->type != PK_STR) return fail_at(vm, "STACK_GLOBAL of non-strings");
      return push_global(vm, module->s, name->s);
    }
    case 't': return make_tuple(vm, -1);
    case 0x85: return make_tuple(vm, 1);
    case 0x86: return make_tuple(vm, 2);
    case 0x87: return make_tuple(vm, 3);
    case 's': return add_items(vm, 0, 1);
    case 'u': return add_items(vm, 1, 1);
    case 'a': return add_items(vm, 0, 0);
    case 'e': return add_items(vm, 1, 0);
    case 'R': case 0x81: return do_reduce(vm);
    case 'Q': return do_persid(vm);
    case 'b': {  // BUILD: a state dict's attributes (torch's `_metadata` versions) are ignored
      PkValue *state = pop(vm);
      PkValue *obj = state ? top(vm) : NULL;
      if (!state || !obj) return -1;
      if (obj->type == PK_DICT && (state->type == PK_NONE || state->type == PK_DICT)) return 0;
      if (obj->type == PK_NPDTYPE) return build_dtype(vm, obj, state);
      if (obj->type == PK_NDARRAY) return build_array(vm, obj, state);
      return fail_at(vm, "BUILD with a state samx does not understand");
    }
    case '.': *done = 1; return 0;
    default: {
      char msg[64];
      snprintf(msg, sizeof msg, "opcode 0x%02x is not accepted", op);
      return fail_at(vm, msg);
    }
  }
}

int samx_pickle_load(const unsigned char *data, size_t n, const char *what, PkArena **arena, PkValue **out) {
  Vm vm = {0};
  vm.p = data;
  vm.n = n;
  vm.what = what;
  vm.arena = (PkArena *)calloc(1, sizeof(PkArena));
  int done = 0, rc = 0;
  while (!done && rc == 0) rc = step(&vm, &done);
  if (rc == 0 && vm.sp != 1) rc = samx_fail("%s: pickle ended with %d values on the stack, expected 1", what, vm.sp);
  *out = rc == 0 ? vm.stack[0] : NULL;
  free(vm.stack);
  free(vm.memo);
  *arena = vm.arena;
  if (rc != 0) {
    samx_pickle_free(vm.arena);
    *arena = NULL;
  }
  return rc;
}

PkValue *samx_pickle_get(const PkValue *dict, const char *key) {
  if (!dict || dict->type != PK_DICT) return NULL;
  for (int i = 0; i + 1 < dict->n; i += 2)
    if (dict->items[i]->type == PK_STR && !strcmp(dict->items[i]->s, key)) return dict->items[i + 1];
  return NULL;
}

int64_t samx_pickle_array_numel(const PkValue *a) {
  if (!a->s) return 0;  // _reconstruct without its BUILD: no elements (not the one of a 0-d array)
  int64_t n = 1;
  for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
  return n;
}

double samx_pickle_array_get(const PkValue *a, int64_t i) {
  const char *p = a->s + (size_t)i * (size_t)a->np_itemsize;
  switch (a->np_kind) {
    case 'f':
      if (a->np_itemsize == 4) {
        float f;
        memcpy(&f, p, 4);
        return f;
      } else {
        double f;
        memcpy(&f, p, 8);
        return f;
      }
    case 'b': return *p != 0;
    case 'u': {
      uint64_t u = 0;
      memcpy(&u, p, (size_t)a->np_itemsize);  // little-endian host
      return (double)u;
    }
    default: {
      int64_t v = 0;
      memcpy(&v, p, (size_t)a->np_itemsize);
      int shift = 64 - 8 * a->np_itemsize;
      return (double)(shift ? (int64_t)((uint64_t)v << shift) >> shift : v);
    }
  }
}
