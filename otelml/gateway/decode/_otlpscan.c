/*
 * _otlpscan: one pass over the OTLP protobuf wire format, straight into columns.
 *
 * Why C: the gateway's cost is decided by how it walks span attributes. Python objects per
 * attribute cost ~26 us/span; this scanner reads only what the gateway uses (ids, times, kind,
 * status, name, service.name and the `ml.*` attributes) and writes flat arrays that numpy views
 * without copying. Every other field is skipped by its wire type, never materialised.
 *
 * Output, for spans or log records ("records"):
 *   per record: trace_id[16], span_id[8], start/end (u64 ns), kind, status, name code, service code,
 *     and per context key (string attributes the caller names: the span's, else its resource's)
 *     the string code of its value (-1: absent or not a string)
 *   per leaf (one scalar value of an `ml.*` attribute; an array contributes one leaf per element):
 *     record, key code, kind, number (double), integer (int64), text code (-1: not a string),
 *     from_array flag, entry (the attribute occurrence it came from)
 *   interned strings: keys, string values, span names, service names (code = list index)
 *
 * Safety: every length and varint is bounds-checked against the payload; malformed input
 * returns ValueError, never reads outside the buffer. No recursion: arrays of arrays are leaves
 * of kind OTHER. Wire groups (deprecated, never used by OTLP) are rejected.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* leaf kinds: must match otelml/gateway/decode/kinds.py */
enum { K_NULL = 0, K_DOUBLE = 1, K_INT = 2, K_BOOL = 3, K_STRING = 4, K_OTHER = 5 };

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap && buf_reserve(b, n)) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* Fixed-size appends: inlined to a bounds check and one store (the per-leaf hot path). */
#define DEFINE_PUT(name, type)                                             \
    static inline int name(Buf *b, type v) {                               \
        if (b->len + sizeof(type) > b->cap && buf_reserve(b, sizeof(type))) \
            return -1;                                                     \
        memcpy(b->data + b->len, &v, sizeof(type));                        \
        b->len += sizeof(type);                                            \
        return 0;                                                          \
    }
DEFINE_PUT(put_i8, int8_t)
DEFINE_PUT(put_u8, uint8_t)
DEFINE_PUT(put_i32, int32_t)
DEFINE_PUT(put_i64, int64_t)
DEFINE_PUT(put_u64, uint64_t)
DEFINE_PUT(put_f64, double)

static int buf_zero(Buf *b, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return 0;
}

/* ---- interning table: byte slices of the payload -> dense codes ------------------------- */

typedef struct {
    uint64_t hash;
    const uint8_t *ptr;
    uint32_t len;
    int32_t code; /* -1: empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t cap, count;
    Buf order; /* Slot index (size_t) per code, in code order */
} Intern;

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int intern_init(Intern *t, size_t cap) {
    t->slots = malloc(cap * sizeof(Slot));
    if (!t->slots) return -1;
    for (size_t i = 0; i < cap; i++) t->slots[i].code = -1;
    t->cap = cap;
    t->count = 0;
    memset(&t->order, 0, sizeof(Buf));
    return 0;
}

static void intern_free(Intern *t) {
    free(t->slots);
    free(t->order.data);
}

static int intern_grow(Intern *t) {
    size_t cap = t->cap * 2;
    Slot *slots = malloc(cap * sizeof(Slot));
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].code = -1;
    size_t *order = (size_t *)t->order.data;
    for (size_t c = 0; c < t->count; c++) {
        Slot s = t->slots[order[c]];
        size_t i = s.hash & (cap - 1);
        while (slots[i].code >= 0) i = (i + 1) & (cap - 1);
        slots[i] = s;
        order[c] = i;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* The code of a slice, adding it if new; -1 on allocation failure. */
static int32_t intern(Intern *t, const uint8_t *p, size_t n) {
    uint64_t h = fnv1a(p, n);
    size_t i = h & (t->cap - 1);
    while (t->slots[i].code >= 0) {
        Slot *s = &t->slots[i];
        if (s->hash == h && s->len == n && memcmp(s->ptr, p, n) == 0) return s->code;
        i = (i + 1) & (t->cap - 1);
    }
    if ((t->count + 1) * 2 > t->cap) {
        if (intern_grow(t)) return -1;
        return intern(t, p, n);
    }
    Slot *s = &t->slots[i];
    s->hash = h;
    s->ptr = p;
    s->len = (uint32_t)n;
    s->code = (int32_t)t->count;
    if (buf_put(&t->order, &i, sizeof(size_t))) return -1;
    t->count++;
    return s->code;
}

static PyObject *intern_list(Intern *t) {
    PyObject *list = PyList_New((Py_ssize_t)t->count);
    if (!list) return NULL;
    size_t *order = (size_t *)t->order.data;
    for (size_t c = 0; c < t->count; c++) {
        Slot *s = &t->slots[order[c]];
        PyObject *str = PyUnicode_DecodeUTF8((const char *)s->ptr, s->len, "replace");
        if (!str) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)c, str);
    }
    return list;
}

/* ---- wire reading ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p, *end;
} Cur;

static inline int varint(Cur *c, uint64_t *out) {
    if (c->p < c->end && !(*c->p & 0x80)) { /* one byte: most tags and lengths */
        *out = *c->p++;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) return -1;
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads a tag; 1 = got one, 0 = end of message, -1 = malformed. */
static inline int tag(Cur *c, uint32_t *field, int *wire) {
    if (c->p >= c->end) return 0;
    uint64_t t;
    if (varint(c, &t)) return -1;
    *field = (uint32_t)(t >> 3);
    *wire = (int)(t & 7);
    return *field ? 1 : -1;
}

static inline int len_delimited(Cur *c, Cur *inner) {
    uint64_t n;
    if (varint(c, &n)) return -1;
    if (n > (uint64_t)(c->end - c->p)) return -1;
    inner->p = c->p;
    inner->end = c->p + n;
    c->p += n;
    return 0;
}

static inline int fixed64(Cur *c, uint64_t *out) {
    if (c->end - c->p < 8) return -1;
    memcpy(out, c->p, 8); /* little-endian hosts only (x86-64, aarch64) */
    c->p += 8;
    return 0;
}

static int skip(Cur *c, int wire) {
    uint64_t v;
    Cur inner;
    switch (wire) {
    case 0: return varint(c, &v);
    case 1:
        if (c->end - c->p < 8) return -1;
        c->p += 8;
        return 0;
    case 2: return len_delimited(c, &inner);
    case 5:
        if (c->end - c->p < 4) return -1;
        c->p += 4;
        return 0;
    default: return -1;
    }
}

/* ---- the scan ---------------------------------------------------------------------------- */

#define MAX_CONTEXT 16

typedef struct {
    int logs;
    const uint8_t *prefix;
    size_t prefix_len;
    /* records */
    Buf trace_id, span_id, start, end, kind, status, name, service;
    int32_t count;
    /* leaves */
    Buf l_record, l_key, l_kind, l_number, l_integer, l_text, l_from_array, l_entry;
    int32_t entries;
    Intern keys, strings, names, services;
    /* context: string attributes kept per record (resource value, overridden by the span's) */
    const uint8_t *ctx_key[MAX_CONTEXT];
    size_t ctx_len[MAX_CONTEXT];
    int n_ctx;
    int32_t block_ctx[MAX_CONTEXT], record_ctx[MAX_CONTEXT];
    Buf context;
    /* Spans of one model carry their attributes in the same order: the key code at each
       position of the previous record is checked first, before hashing. */
    int32_t recent[64];
    uint32_t position;
    /* Leaves allowed (0: no limit); past it the scan stops at once, `too_many` set. */
    Py_ssize_t max_leaves;
    int too_many;
    const char *error;
} Scan;

#define FAIL(s, msg)            \
    do {                        \
        (s)->error = (msg);     \
        return -1;              \
    } while (0)

typedef struct {
    int8_t kind;
    double number;
    int64_t integer;
    const uint8_t *text;
    size_t text_len;
    Cur array;
} Value;

/* Decodes one AnyValue; for arrays, `array` holds the ArrayValue body. */
/* Arrays and kvlists within each other may nest MAX_NESTING deep: one rule for every request,
   redacted or not (protobuf's own parsers give up near 32 kvlists deep, and the redaction
   processor parses with them). The recursion is bounded by the budget. 0 = within, -1 = not. */
#define MAX_NESTING 16

static int nesting_within(Cur v, int budget);

static int key_value_nesting(Cur kv, int budget) {
    uint32_t field;
    int wire, r;
    while ((r = tag(&kv, &field, &wire)) == 1) {
        if (field == 2 && wire == 2) {
            Cur value;
            if (len_delimited(&kv, &value) || nesting_within(value, budget)) return -1;
        } else if (skip(&kv, wire)) {
            return -1;
        }
    }
    return r < 0 ? -1 : 0;
}

static int nesting_within(Cur v, int budget) {
    uint32_t field, f2;
    int wire, w2, r, r2;
    while ((r = tag(&v, &field, &wire)) == 1) {
        if ((field == 5 || field == 6) && wire == 2) {
            Cur list, item;
            if (budget == 0 || len_delimited(&v, &list)) return -1;
            while ((r2 = tag(&list, &f2, &w2)) == 1) {
                if (f2 == 1 && w2 == 2) {
                    if (len_delimited(&list, &item)) return -1;
                    if (field == 5 ? nesting_within(item, budget - 1)
                                   : key_value_nesting(item, budget - 1))
                        return -1;
                } else if (skip(&list, w2)) {
                    return -1;
                }
            }
            if (r2 < 0) return -1;
        } else if (skip(&v, wire)) {
            return -1;
        }
    }
    return r < 0 ? -1 : 0;
}

/* The KeyValue entries of field `attributes` of a message (event, link, scope), each within
   MAX_NESTING. 0 = within, -1 = not (or malformed). */
static int attributes_within(Cur message, uint32_t attributes) {
    uint32_t field;
    int wire, r;
    while ((r = tag(&message, &field, &wire)) == 1) {
        if (field == attributes && wire == 2) {
            Cur kv;
            if (len_delimited(&message, &kv) || key_value_nesting(kv, MAX_NESTING)) return -1;
        } else if (skip(&message, wire)) {
            return -1;
        }
    }
    return r < 0 ? -1 : 0;
}

#define TOO_DEEP "attribute value malformed or nested deeper than 16 arrays/kvlists"

static int any_value(Scan *s, Cur c, Value *v) {
    uint32_t field;
    int wire, r;
    uint64_t u;
    Cur inner;
    v->kind = K_NULL;
    v->number = 0.0;
    v->integer = 0;
    v->text = NULL;
    v->text_len = 0;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 1 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad string_value");
            v->kind = K_STRING;
            v->text = inner.p;
            v->text_len = (size_t)(inner.end - inner.p);
        } else if (field == 2 && wire == 0) {
            if (varint(&c, &u)) FAIL(s, "bad bool_value");
            v->kind = K_BOOL;
            v->number = u ? 1.0 : 0.0;
            v->integer = u ? 1 : 0;
        } else if (field == 3 && wire == 0) {
            if (varint(&c, &u)) FAIL(s, "bad int_value");
            v->kind = K_INT;
            v->integer = (int64_t)u;
            v->number = (double)v->integer;
        } else if (field == 4 && wire == 1) {
            if (fixed64(&c, &u)) FAIL(s, "bad double_value");
            v->kind = K_DOUBLE;
            memcpy(&v->number, &u, 8);
        } else if (field == 5 && wire == 2) {
            if (len_delimited(&c, &v->array)) FAIL(s, "bad array_value");
            v->kind = 6; /* array: expanded by the caller */
        } else if ((field == 6 || field == 7) && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad value");
            v->kind = K_OTHER;
        } else if (skip(&c, wire)) {
            FAIL(s, "bad AnyValue field");
        }
    }
    if (r < 0) FAIL(s, "malformed AnyValue");
    return 0;
}

static int put_leaf(Scan *s, int32_t key, const Value *v, uint8_t from_array) {
    int32_t text = -1;
    /* l_kind holds one byte per leaf: its length is the number of leaves so far. */
    if (s->max_leaves > 0 && (Py_ssize_t)s->l_kind.len >= s->max_leaves) {
        s->too_many = 1;
        FAIL(s, "too many values");
    }
    if (v->kind == K_STRING) {
        text = intern(&s->strings, v->text, v->text_len);
        if (text < 0) FAIL(s, "out of memory");
    }
    int8_t kind = v->kind == 6 ? K_OTHER : v->kind;
    if (put_i32(&s->l_record, s->count) | put_i32(&s->l_key, key) | put_i8(&s->l_kind, kind) |
        put_f64(&s->l_number, v->number) | put_i64(&s->l_integer, v->integer) |
        put_i32(&s->l_text, text) | put_u8(&s->l_from_array, from_array) |
        put_i32(&s->l_entry, s->entries))
        FAIL(s, "out of memory");
    return 0;
}

/* Index of a context key equal to `key`, or -1. */
static int context_of(const Scan *s, Cur key) {
    size_t len = key.p ? (size_t)(key.end - key.p) : 0;
    for (int i = 0; i < s->n_ctx; i++)
        if (s->ctx_len[i] == len && memcmp(s->ctx_key[i], key.p, len) == 0) return i;
    return -1;
}

/* A context attribute's value: its string code, or leaves `*slot` as it is (not a string). */
static int context_value(Scan *s, Cur value, int32_t *slot) {
    Value v;
    if (any_value(s, value, &v)) return -1;
    if (v.kind == K_STRING) {
        *slot = intern(&s->strings, v.text, v.text_len);
        if (*slot < 0) FAIL(s, "out of memory");
    }
    return 0;
}

static int key_value(Scan *s, Cur c) {
    uint32_t field;
    int wire, r;
    Cur key = {NULL, NULL}, value = {NULL, NULL};
    int has_value = 0;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 1 && wire == 2) {
            if (len_delimited(&c, &key)) FAIL(s, "bad attribute key");
        } else if (field == 2 && wire == 2) {
            if (len_delimited(&c, &value)) FAIL(s, "bad attribute value");
            has_value = 1;
        } else if (skip(&c, wire)) {
            FAIL(s, "bad KeyValue field");
        }
    }
    if (r < 0) FAIL(s, "malformed KeyValue");
    if (has_value && nesting_within(value, MAX_NESTING))
        FAIL(s, TOO_DEEP);
    if (s->n_ctx && has_value) {
        int ctx = context_of(s, key);
        if (ctx >= 0 && context_value(s, value, &s->record_ctx[ctx])) return -1;
    }
    size_t key_len = key.p ? (size_t)(key.end - key.p) : 0;
    if (key_len < s->prefix_len || memcmp(key.p, s->prefix, s->prefix_len) != 0) return 0;
    int32_t code = -1;
    uint32_t position = s->position++;
    if (position < 64 && s->recent[position] >= 0) {
        size_t *order = (size_t *)s->keys.order.data;
        Slot *slot = &s->keys.slots[order[s->recent[position]]];
        if (slot->len == key_len && memcmp(slot->ptr, key.p, key_len) == 0) code = slot->code;
    }
    if (code < 0) {
        code = intern(&s->keys, key.p, key_len);
        if (code < 0) FAIL(s, "out of memory");
        if (position < 64) s->recent[position] = code;
    }
    Value v;
    if (has_value) {
        if (any_value(s, value, &v)) return -1;
    } else {
        v.kind = K_NULL;
        v.number = 0.0;
        v.integer = 0;
    }
    if (v.kind == 6) {
        Cur a = v.array;
        while ((r = tag(&a, &field, &wire)) == 1) {
            if (field == 1 && wire == 2) {
                Cur element;
                Value ev;
                if (len_delimited(&a, &element)) FAIL(s, "bad array element");
                if (any_value(s, element, &ev)) return -1;
                if (put_leaf(s, code, &ev, 1)) return -1;
            } else if (skip(&a, wire)) {
                FAIL(s, "bad ArrayValue field");
            }
        }
        if (r < 0) FAIL(s, "malformed ArrayValue");
    } else if (put_leaf(s, code, &v, 0)) {
        return -1;
    }
    s->entries++;
    return 0;
}

static int record(Scan *s, Cur c, int32_t service) {
    uint32_t field;
    int wire, r;
    uint64_t u, start = 0, end = 0, observed = 0;
    int32_t kind = 0, status = 0, name = -1;
    Cur inner, trace = {NULL, NULL}, span = {NULL, NULL};
    /* field numbers: span vs log record */
    const uint32_t F_TRACE = s->logs ? 9 : 1, F_SPAN = s->logs ? 10 : 2;
    const uint32_t F_ATTRS = s->logs ? 6 : 9;
    s->position = 0;
    memcpy(s->record_ctx, s->block_ctx, sizeof(s->record_ctx));
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == F_TRACE && wire == 2) {
            if (len_delimited(&c, &trace)) FAIL(s, "bad trace_id");
        } else if (field == F_SPAN && wire == 2) {
            if (len_delimited(&c, &span)) FAIL(s, "bad span_id");
        } else if (field == F_ATTRS && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad attribute");
            if (key_value(s, inner)) return -1;
        } else if (!s->logs && field == 5 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad span name");
            name = intern(&s->names, inner.p, (size_t)(inner.end - inner.p));
            if (name < 0) FAIL(s, "out of memory");
        } else if (!s->logs && field == 6 && wire == 0) {
            if (varint(&c, &u)) FAIL(s, "bad span kind");
            kind = (int32_t)u;
        } else if (!s->logs && field == 7 && wire == 1) {
            if (fixed64(&c, &start)) FAIL(s, "bad start time");
        } else if (!s->logs && field == 8 && wire == 1) {
            if (fixed64(&c, &end)) FAIL(s, "bad end time");
        } else if (!s->logs && field == 15 && wire == 2) {
            uint32_t f2;
            int w2, r2;
            if (len_delimited(&c, &inner)) FAIL(s, "bad status");
            while ((r2 = tag(&inner, &f2, &w2)) == 1) {
                if (f2 == 3 && w2 == 0) {
                    if (varint(&inner, &u)) FAIL(s, "bad status code");
                    status = (int32_t)u;
                } else if (skip(&inner, w2)) {
                    FAIL(s, "bad status field");
                }
            }
            if (r2 < 0) FAIL(s, "malformed status");
        } else if (!s->logs && (field == 11 || field == 13) && wire == 2) {
            /* events (attributes: field 3) and links (field 4): the same nesting rule */
            if (len_delimited(&c, &inner)) FAIL(s, "bad event or link");
            if (attributes_within(inner, field == 11 ? 3 : 4)) FAIL(s, TOO_DEEP);
        } else if (s->logs && field == 5 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad log body");
            if (nesting_within(inner, MAX_NESTING)) FAIL(s, TOO_DEEP);
        } else if (s->logs && field == 1 && wire == 1) {
            if (fixed64(&c, &end)) FAIL(s, "bad log time");
        } else if (s->logs && field == 11 && wire == 1) {
            if (fixed64(&c, &observed)) FAIL(s, "bad observed time");
        } else if (skip(&c, wire)) {
            FAIL(s, s->logs ? "bad log record field" : "bad span field");
        }
    }
    if (r < 0) FAIL(s, s->logs ? "malformed log record" : "malformed span");
    if (s->logs && end == 0) end = observed;
    if (name < 0) {
        name = intern(&s->names, (const uint8_t *)"", 0);
        if (name < 0) FAIL(s, "out of memory");
    }
    /* ids of the wrong length count as absent (all zeros): the receiver rejects such spans */
    int bad = 0;
    if (trace.p && trace.end - trace.p == 16) bad |= buf_put(&s->trace_id, trace.p, 16);
    else bad |= buf_zero(&s->trace_id, 16);
    if (span.p && span.end - span.p == 8) bad |= buf_put(&s->span_id, span.p, 8);
    else bad |= buf_zero(&s->span_id, 8);
    bad |= put_u64(&s->start, start) | put_u64(&s->end, end);
    bad |= put_i32(&s->kind, kind) | put_i32(&s->status, status);
    bad |= put_i32(&s->name, name) | put_i32(&s->service, service);
    for (int i = 0; i < s->n_ctx; i++) bad |= put_i32(&s->context, s->record_ctx[i]);
    if (bad) FAIL(s, "out of memory");
    s->count++;
    return 0;
}

/* service.name of a Resource, interned; code 0 is "unknown_service". */
static int resource_service(Scan *s, Cur c, int32_t *service) {
    uint32_t field, f2;
    int wire, w2, r, r2;
    Cur kv, key, value;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 1 && wire == 2) {
            if (len_delimited(&c, &kv)) FAIL(s, "bad resource attribute");
            key.p = value.p = NULL;
            while ((r2 = tag(&kv, &f2, &w2)) == 1) {
                if (f2 == 1 && w2 == 2) {
                    if (len_delimited(&kv, &key)) FAIL(s, "bad resource attribute key");
                } else if (f2 == 2 && w2 == 2) {
                    if (len_delimited(&kv, &value)) FAIL(s, "bad resource attribute value");
                } else if (skip(&kv, w2)) {
                    FAIL(s, "bad resource attribute field");
                }
            }
            if (r2 < 0) FAIL(s, "malformed resource attribute");
            if (value.p && nesting_within(value, MAX_NESTING)) FAIL(s, TOO_DEEP);
            if (s->n_ctx && key.p && value.p) {
                int ctx = context_of(s, key);
                if (ctx >= 0 && context_value(s, value, &s->block_ctx[ctx])) return -1;
            }
            if (key.p && value.p && key.end - key.p == 12 && memcmp(key.p, "service.name", 12) == 0) {
                Value v;
                if (any_value(s, value, &v)) return -1;
                if (v.kind == K_STRING && v.text_len > 0) {
                    *service = intern(&s->services, v.text, v.text_len);
                    if (*service < 0) FAIL(s, "out of memory");
                }
            }
        } else if (skip(&c, wire)) {
            FAIL(s, "bad resource field");
        }
    }
    if (r < 0) FAIL(s, "malformed resource");
    return 0;
}

static int scope(Scan *s, Cur c, int32_t service) {
    uint32_t field;
    int wire, r;
    Cur inner;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 2 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad record");
            if (record(s, inner, service)) return -1;
        } else if (field == 1 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad scope");
            if (attributes_within(inner, 3)) FAIL(s, TOO_DEEP);
        } else if (skip(&c, wire)) {
            FAIL(s, "bad scope field");
        }
    }
    if (r < 0) FAIL(s, "malformed scope");
    return 0;
}

static int resource_block(Scan *s, Cur c) {
    uint32_t field;
    int wire, r;
    Cur inner, first = c;
    int32_t service = 0;
    for (int i = 0; i < MAX_CONTEXT; i++) s->block_ctx[i] = -1;
    /* pass 1: the resource (it may follow the scopes on the wire) */
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 1 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad resource");
            if (resource_service(s, inner, &service)) return -1;
        } else if (skip(&c, wire)) {
            FAIL(s, "bad resource block field");
        }
    }
    if (r < 0) FAIL(s, "malformed resource block");
    c = first;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 2 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad scope");
            if (scope(s, inner, service)) return -1;
        } else if (skip(&c, wire)) {
            FAIL(s, "bad resource block field");
        }
    }
    return 0;
}

static int request(Scan *s, Cur c) {
    uint32_t field;
    int wire, r;
    Cur inner;
    while ((r = tag(&c, &field, &wire)) == 1) {
        if (field == 1 && wire == 2) {
            if (len_delimited(&c, &inner)) FAIL(s, "bad resource block");
            if (resource_block(s, inner)) return -1;
        } else if (skip(&c, wire)) {
            FAIL(s, "bad request field");
        }
    }
    if (r < 0) FAIL(s, "malformed request");
    return 0;
}

static void scan_free(Scan *s) {
    Buf *bufs[] = {&s->trace_id, &s->span_id, &s->start, &s->end, &s->kind, &s->status,
                   &s->name, &s->service, &s->l_record, &s->l_key, &s->l_kind, &s->l_number,
                   &s->l_integer, &s->l_text, &s->l_from_array, &s->l_entry, &s->context};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]->data);
    intern_free(&s->keys);
    intern_free(&s->strings);
    intern_free(&s->names);
    intern_free(&s->services);
}

static PyObject *as_bytes(Buf *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer payload;
    int logs;
    const char *prefix;
    Py_ssize_t prefix_len;
    PyObject *context = NULL;
    Py_ssize_t max_leaves = 0;
    if (!PyArg_ParseTuple(args, "y*ps#|O!n", &payload, &logs, &prefix, &prefix_len, &PyTuple_Type,
                          &context, &max_leaves))
        return NULL;
    Scan s;
    memset(&s, 0, sizeof(s));
    Py_ssize_t n_ctx = context ? PyTuple_GET_SIZE(context) : 0;
    if (n_ctx > MAX_CONTEXT) {
        PyBuffer_Release(&payload);
        return PyErr_Format(PyExc_ValueError, "at most %d context keys", MAX_CONTEXT);
    }
    for (Py_ssize_t i = 0; i < n_ctx; i++) {
        PyObject *item = PyTuple_GET_ITEM(context, i);
        if (!PyBytes_Check(item)) {
            PyBuffer_Release(&payload);
            return PyErr_Format(PyExc_TypeError, "context keys must be bytes");
        }
        s.ctx_key[i] = (const uint8_t *)PyBytes_AS_STRING(item);
        s.ctx_len[i] = (size_t)PyBytes_GET_SIZE(item);
    }
    s.n_ctx = (int)n_ctx;
    s.max_leaves = max_leaves;
    s.logs = logs;
    s.prefix = (const uint8_t *)prefix;
    s.prefix_len = (size_t)prefix_len;
    for (int i = 0; i < 64; i++) s.recent[i] = -1;
    if (intern_init(&s.keys, 64) || intern_init(&s.strings, 256) || intern_init(&s.names, 16) ||
        intern_init(&s.services, 16)) {
        scan_free(&s);
        PyBuffer_Release(&payload);
        return PyErr_NoMemory();
    }
    if (intern(&s.services, (const uint8_t *)"unknown_service", 15) < 0) s.error = "out of memory";
    Cur c = {(const uint8_t *)payload.buf, (const uint8_t *)payload.buf + payload.len};
    int failed = s.error != NULL;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) failed = request(&s, c);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (failed && s.too_many) {
        PyErr_Format(PyExc_OverflowError, "more than %zd ml.* values", s.max_leaves);
    } else if (failed) {
        PyErr_Format(PyExc_ValueError, "%s", s.error ? s.error : "malformed protobuf");
    } else {
        result = Py_BuildValue(
            "{s:i,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N}",
            "count", s.count, "trace_id", as_bytes(&s.trace_id), "span_id", as_bytes(&s.span_id),
            "start", as_bytes(&s.start), "end", as_bytes(&s.end), "kind", as_bytes(&s.kind),
            "status", as_bytes(&s.status), "name", as_bytes(&s.name), "service",
            as_bytes(&s.service), "leaf_record", as_bytes(&s.l_record), "leaf_key",
            as_bytes(&s.l_key), "leaf_kind", as_bytes(&s.l_kind), "leaf_number",
            as_bytes(&s.l_number), "leaf_integer", as_bytes(&s.l_integer), "leaf_text",
            as_bytes(&s.l_text), "leaf_from_array", as_bytes(&s.l_from_array), "leaf_entry",
            as_bytes(&s.l_entry), "context", as_bytes(&s.context), "keys", intern_list(&s.keys), "strings",
            intern_list(&s.strings), "names", intern_list(&s.names), "services",
            intern_list(&s.services));
    }
    scan_free(&s);
    PyBuffer_Release(&payload);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(payload, logs, prefix, context=(), max_leaves=0) -> dict of column bytes: an OTLP "
     "traces (logs=False) or logs request, keeping only attributes whose key starts with prefix, "
     "and per record the string code of each context key (span attribute, else resource "
     "attribute; -1: absent). OverflowError past max_leaves values (0: no limit)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpscan", "Columnar scan of OTLP protobuf requests.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__otlpscan(void) { return PyModule_Create(&module); }
