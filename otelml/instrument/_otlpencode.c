/*
 * _otlpencode: OpenTelemetry SDK spans -> the bytes of an OTLP ExportTraceServiceRequest.
 *
 * Why C: the SDK's encoder builds one protobuf object per attribute, array element, event and
 * link, then serialises them: ~50-90 us per span with 20 feature attributes, paid in the
 * export thread of the model service (it holds the GIL the request path needs). This writes
 * the wire format straight from the span objects into one buffer.
 *
 * Contract: the bytes equal the installed SDK encoder's `encode_spans(spans).SerializeToString()`.
 * The SDK changed what it writes over its versions, so `mode` (bits, below) says which fields
 * to write; otelml.instrument.encoder finds the mode the installed SDK matches by comparing
 * bytes once. Anything this encoder does not reproduce exactly (a value type it does not
 * know, an integer beyond int64, a string that is not UTF-8 encodable, a null where the SDK
 * cannot send one) raises `Unsupported`, and the caller uses the SDK's encoder for that batch.
 *
 * Field order is ascending field number, as upb and the pure-Python protobuf serialise. Lengths
 * of nested messages are written after their content: one byte is reserved and the content
 * moved when its length needs a longer varint.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* mode bits: which fields the installed SDK writes */
enum {
    M_FLAGS = 1,       /* Span.flags, Link.flags (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE / IS_REMOTE) */
    M_SCHEMA = 2,      /* ResourceSpans.schema_url, ScopeSpans.schema_url */
    M_SCOPE_ATTRS = 4, /* InstrumentationScope.attributes */
    M_NULLS = 8,       /* None (as an attribute or array element) -> an empty AnyValue */
    M_BYTES = 16,      /* bytes -> AnyValue.bytes_value */
};

#define MAX_DEPTH 16
#define SPAN_HEADER 4 /* encode_span's group key */

static PyObject *Unsupported;
static PyObject *shift64; /* the int 64 */

/* interned attribute names */
static PyObject *s_attributes, *s_schema_url, *s_name, *s_version, *s_get_span_context,
    *s_trace_id, *s_span_id, *s_trace_state, *s_parent, *s_kind, *s_value, *s_start_time,
    *s_end_time, *s_events, *s_links, *s_status, *s_dropped_attributes, *s_dropped_events,
    *s_dropped_links, *s_is_remote, *s_timestamp, *s_context, *s_status_code, *s_description,
    *s_dropped, *s__attributes, *s__dict, *s__context, *s__parent, *s__name, *s__kind,
    *s__start_time, *s__end_time, *s__events, *s__links, *s__status;

/* Types whose fields are read directly (`register`): a span type whose instances keep the
 * SDK's private fields in their __dict__ (otelml's LeanSpan) and the API's SpanContext, a
 * tuple (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid). Reading them
 * instead of calling the SDK's properties saves a dozen Python calls per span. */
static PyObject *lean_type, *context_type;
enum { CTX_TRACE_ID = 0, CTX_SPAN_ID = 1, CTX_IS_REMOTE = 2, CTX_TRACE_STATE = 4, CTX_SIZE = 6 };

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_grow(Buf *b, size_t extra) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_reserve(Buf *b, size_t extra) {
    return b->len + extra <= b->cap ? 0 : buf_grow(b, extra);
}

static inline int put_varint(Buf *b, uint64_t v) {
    if (buf_reserve(b, 10)) return -1;
    unsigned char *p = (unsigned char *)b->data + b->len;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    b->len = (size_t)((char *)p - b->data);
    return 0;
}

static inline int put_raw(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static inline int put_fixed64(Buf *b, uint64_t v) {
    unsigned char out[8];
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (8 * i));
    return put_raw(b, out, 8);
}

static inline int put_fixed32(Buf *b, uint32_t v) {
    unsigned char out[4];
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(v >> (8 * i));
    return put_raw(b, out, 4);
}

static inline int put_len_field(Buf *b, uint32_t tag, const char *data, size_t n) {
    if (put_varint(b, tag) || put_varint(b, n)) return -1;
    return put_raw(b, data, n);
}

/* A nested message: tag and one reserved length byte now, the length once its content is. */
static inline int begin(Buf *b, uint32_t tag, size_t *mark) {
    if (put_varint(b, tag) || buf_reserve(b, 1)) return -1;
    *mark = b->len++;
    return 0;
}

static int end(Buf *b, size_t mark) {
    size_t n = b->len - mark - 1;
    if (n < 0x80) {
        b->data[mark] = (char)n;
        return 0;
    }
    size_t width = 1;
    for (size_t v = n; v >= 0x80; v >>= 7) width++;
    if (buf_reserve(b, width - 1)) return -1;
    memmove(b->data + mark + width, b->data + mark + 1, n);
    unsigned char *p = (unsigned char *)b->data + mark;
    size_t v = n;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p = (unsigned char)v;
    b->len += width - 1;
    return 0;
}

static int unsupported(const char *what) {
    PyErr_SetString(Unsupported, what);
    return -1;
}

/* A str as UTF-8; a str that cannot be encoded (lone surrogates) is the SDK's to handle. */
static int utf8(PyObject *s, const char **data, Py_ssize_t *n) {
    if (!PyUnicode_Check(s)) return unsupported("not a str");
    *data = PyUnicode_AsUTF8AndSize(s, n);
    if (*data == NULL) {
        PyErr_Clear();
        return unsupported("str not encodable as UTF-8");
    }
    return 0;
}

/* A proto3 string field: omitted when empty; None = unset. */
static int put_string_field(Buf *b, uint32_t tag, PyObject *s) {
    if (s == Py_None) return 0;
    const char *data;
    Py_ssize_t n;
    if (utf8(s, &data, &n)) return -1;
    return n ? put_len_field(b, tag, data, (size_t)n) : 0;
}

/* A proto3 integer: None or 0 = omitted. */
static int as_u64(PyObject *v, uint64_t *out) {
    if (v == Py_None) {
        *out = 0;
        return 0;
    }
    if (!PyLong_Check(v)) return unsupported("not an int");
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return unsupported("int out of range");
    }
    *out = x;
    return 0;
}

static int put_uint_field(Buf *b, uint32_t tag, PyObject *v, uint64_t max) {
    uint64_t x;
    if (as_u64(v, &x)) return -1;
    if (x > max) return unsupported("int out of range");
    if (x == 0) return 0;
    return put_varint(b, tag) || put_varint(b, x) ? -1 : 0;
}

/* A SpanContext's field (new reference): its tuple item where it is the API's SpanContext,
 * else the attribute. */
static PyObject *context_field(PyObject *context, Py_ssize_t index, PyObject *name) {
    if (context_type != NULL && (PyObject *)Py_TYPE(context) == context_type &&
        PyTuple_GET_SIZE(context) == CTX_SIZE)
        return Py_NewRef(PyTuple_GET_ITEM(context, index));
    return PyObject_GetAttr(context, name);
}

/* A trace id (16 bytes) or span id (8) of a SpanContext, big-endian, as the SDK's
 * int.to_bytes writes it; out of range is the SDK's to report. */
static int put_id_field(Buf *b, uint32_t tag, PyObject *context, Py_ssize_t index,
                        PyObject *name, size_t width) {
    PyObject *v = context_field(context, index, name);
    if (v == NULL) return -1;
    if (!PyLong_Check(v)) {
        Py_DECREF(v);
        return unsupported("id not an int");
    }
    unsigned long long high = 0, low;
    if (width == 16) {
        low = PyLong_AsUnsignedLongLongMask(v);
        PyObject *top = PyNumber_Rshift(v, shift64);
        if (top == NULL) {
            Py_DECREF(v);
            return -1;
        }
        high = PyLong_AsUnsignedLongLong(top);
        Py_DECREF(top);
    } else {
        low = PyLong_AsUnsignedLongLong(v);
    }
    Py_DECREF(v);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return unsupported("id out of range");
    }
    unsigned char out[16];
    size_t at = 0;
    if (width == 16)
        for (int i = 7; i >= 0; i--) out[at++] = (unsigned char)(high >> (8 * i));
    for (int i = 7; i >= 0; i--) out[at++] = (unsigned char)(low >> (8 * i));
    return put_len_field(b, tag, (const char *)out, width);
}

static int put_any_value(Buf *b, PyObject *value, int mode, int depth);

static int put_array(Buf *b, PyObject *seq, int mode, int depth) {
    size_t mark;
    if (begin(b, (5 << 3) | 2, &mark)) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t inner;
        if (begin(b, (1 << 3) | 2, &inner) || put_any_value(b, items[i], mode, depth + 1) ||
            end(b, inner))
            return -1;
    }
    return end(b, mark);
}

/* AnyValue's content (its fields are a oneof: written even when they hold the default). */
static int put_any_value(Buf *b, PyObject *value, int mode, int depth) {
    if (depth > MAX_DEPTH) return unsupported("nested too deep");
    if (value == Py_None) {
        return (mode & M_NULLS) ? 0 : unsupported("null value");
    }
    if (PyBool_Check(value)) {
        return put_varint(b, (2 << 3) | 0) || put_varint(b, value == Py_True) ? -1 : 0;
    }
    if (PyUnicode_Check(value)) {
        const char *data;
        Py_ssize_t n;
        if (utf8(value, &data, &n)) return -1;
        return put_len_field(b, (1 << 3) | 2, data, (size_t)n);
    }
    if (PyLong_Check(value)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) return unsupported("int beyond int64");
        if (x == -1 && PyErr_Occurred()) return -1;
        return put_varint(b, (3 << 3) | 0) || put_varint(b, (uint64_t)x) ? -1 : 0;
    }
    if (PyFloat_Check(value)) {
        double d = PyFloat_AsDouble(value);
        if (d == -1.0 && PyErr_Occurred()) return -1;
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return put_varint(b, (4 << 3) | 1) || put_fixed64(b, bits) ? -1 : 0;
    }
    if (PyBytes_Check(value)) {
        if (!(mode & M_BYTES)) return unsupported("bytes value");
        return put_len_field(b, (7 << 3) | 2, PyBytes_AS_STRING(value),
                             (size_t)PyBytes_GET_SIZE(value));
    }
    if (PyTuple_Check(value) || PyList_Check(value)) return put_array(b, value, mode, depth);
    return unsupported("value type");
}

static int put_key_value(Buf *b, uint32_t tag, PyObject *key, PyObject *value, int mode) {
    size_t mark, inner;
    const char *data;
    Py_ssize_t klen;
    if (begin(b, tag, &mark) || utf8(key, &data, &klen) ||
        (klen && put_len_field(b, (1 << 3) | 2, data, (size_t)klen)) ||
        begin(b, (2 << 3) | 2, &inner) || put_any_value(b, value, mode, 0) || end(b, inner) ||
        end(b, mark))
        return -1;
    return 0;
}

/* repeated KeyValue `tag` from a mapping (dict, BoundedAttributes, mappingproxy) or None. */
static int put_attributes(Buf *b, uint32_t tag, PyObject *mapping, int mode) {
    if (mapping == Py_None) return 0;
    PyObject *owned = NULL;
    if (!PyDict_CheckExact(mapping)) {
        /* The SDK's BoundedAttributes is a Python MutableMapping (items() walks it with a lock
         * per key); the plain dict `_dict` it keeps holds the same items in the same order. */
        owned = PyObject_GetAttr(mapping, s__dict);
        if (owned == NULL || !PyDict_CheckExact(owned)) {
            PyErr_Clear();
            Py_CLEAR(owned);
        }
    }
    PyObject *dict = owned ? owned : (PyDict_CheckExact(mapping) ? mapping : NULL);
    int rc = 0;
    if (dict != NULL) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (rc == 0 && PyDict_Next(dict, &pos, &key, &value))
            rc = put_key_value(b, tag, key, value, mode);
        Py_XDECREF(owned);
        return rc;
    }
    /* Any other mapping (an OrderedDict, a mappingproxy): its own items(), in its order. */
    PyObject *items = PyMapping_Items(mapping);
    if (items == NULL) return -1;
    Py_ssize_t n = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
            rc = unsupported("mapping item");
        else
            rc = put_key_value(b, tag, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), mode);
    }
    Py_DECREF(items);
    return rc;
}

/* An owner's attributes (new reference): ReadableSpan.attributes wraps `_attributes` in a
 * mappingproxy, so what it wraps where there is one, else `.attributes`. */
static PyObject *attributes_of(PyObject *owner) {
    PyObject *attributes = PyObject_GetAttr(owner, s__attributes);
    if (attributes == NULL) {
        PyErr_Clear();
        attributes = PyObject_GetAttr(owner, s_attributes);
    }
    return attributes;
}

static int put_attr_attributes(Buf *b, uint32_t tag, PyObject *owner, int mode) {
    PyObject *attributes = attributes_of(owner);
    if (attributes == NULL) return -1;
    int rc = put_attributes(b, tag, attributes, mode);
    Py_DECREF(attributes);
    return rc;
}

/* An object's attribute, written as a proto3 string / fixed64 field. */
static int put_attr_string(Buf *b, uint32_t tag, PyObject *owner, PyObject *name) {
    PyObject *v = PyObject_GetAttr(owner, name);
    if (v == NULL) return -1;
    int rc = put_string_field(b, tag, v);
    Py_DECREF(v);
    return rc;
}

static int put_fixed64_field(Buf *b, uint32_t tag, PyObject *v) {
    uint64_t x;
    if (as_u64(v, &x)) return -1;
    if (x == 0) return 0;
    return put_varint(b, tag) || put_fixed64(b, x) ? -1 : 0;
}

static int put_attr_fixed64(Buf *b, uint32_t tag, PyObject *owner, PyObject *name) {
    PyObject *v = PyObject_GetAttr(owner, name);
    if (v == NULL) return -1;
    int rc = put_fixed64_field(b, tag, v);
    Py_DECREF(v);
    return rc;
}

/* Dropped attributes of an event or link: `.dropped_attributes` where the SDK has it, else
 * the BoundedAttributes' `.dropped` (what older SDKs encode). */
static int put_dropped_attributes(Buf *b, uint32_t tag, PyObject *owner) {
    PyObject *v = PyObject_GetAttr(owner, s_dropped_attributes);
    if (v == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear();
        PyObject *attributes = PyObject_GetAttr(owner, s_attributes);
        if (attributes == NULL) return -1;
        v = PyObject_GetAttr(attributes, s_dropped);
        Py_DECREF(attributes);
        if (v == NULL) return -1;
    }
    int rc = put_uint_field(b, tag, v, UINT32_MAX);
    Py_DECREF(v);
    return rc;
}

/* SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, | IS_REMOTE when `context` is a remote one. */
static int span_flags(PyObject *context, uint32_t *flags) {
    *flags = 0x100;
    if (context == Py_None) return 0;
    PyObject *remote = context_field(context, CTX_IS_REMOTE, s_is_remote);
    if (remote == NULL) return -1;
    int truth = PyObject_IsTrue(remote);
    Py_DECREF(remote);
    if (truth < 0) return -1;
    if (truth) *flags |= 0x200;
    return 0;
}

static int put_trace_state(Buf *b, PyObject *context) {
    PyObject *state = context_field(context, CTX_TRACE_STATE, s_trace_state);
    if (state == NULL) return -1;
    if (state == Py_None) {
        Py_DECREF(state);
        return 0;
    }
    /* The usual empty TraceState: its `_dict` says so without building an items list (only
     * its size is read: an OrderedDict's own storage order may differ from its order). */
    PyObject *entries = PyObject_GetAttr(state, s__dict);
    if (entries == NULL) {
        PyErr_Clear();
    } else {
        int empty = PyDict_Check(entries) && PyDict_GET_SIZE(entries) == 0;
        Py_DECREF(entries);
        if (empty) {
            Py_DECREF(state);
            return 0;
        }
    }
    PyObject *items = PyMapping_Items(state);
    Py_DECREF(state);
    if (items == NULL) return -1;
    Py_ssize_t n = PyList_GET_SIZE(items);
    int rc = 0;
    if (n > 0) {
        size_t mark;
        rc = begin(b, (3 << 3) | 2, &mark);
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
            PyObject *pair = PyList_GET_ITEM(items, i);
            const char *k, *v;
            Py_ssize_t kn, vn;
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) ||
                !PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
                rc = unsupported("trace state entry");
                break;
            }
            if (utf8(PyTuple_GET_ITEM(pair, 0), &k, &kn) ||
                utf8(PyTuple_GET_ITEM(pair, 1), &v, &vn) || (i && put_raw(b, ",", 1)) ||
                put_raw(b, k, (size_t)kn) || put_raw(b, "=", 1) || put_raw(b, v, (size_t)vn))
                rc = -1;
        }
        if (rc == 0) rc = end(b, mark); /* never empty: every entry has its "=" */
    }
    Py_DECREF(items);
    return rc;
}

static int put_events(Buf *b, PyObject *events, int mode) {
    PyObject *seq = PySequence_Fast(events, "events");
    if (seq == NULL) return -1;
    int rc = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *event = PySequence_Fast_GET_ITEM(seq, i);
        size_t mark;
        if (begin(b, (11 << 3) | 2, &mark) ||
            put_attr_fixed64(b, (1 << 3) | 1, event, s_timestamp) ||
            put_attr_string(b, (2 << 3) | 2, event, s_name) ||
            put_attr_attributes(b, (3 << 3) | 2, event, mode) ||
            put_dropped_attributes(b, (4 << 3) | 0, event) || end(b, mark))
            rc = -1;
    }
    Py_DECREF(seq);
    return rc;
}

static int put_link(Buf *b, PyObject *link, int mode) {
    PyObject *context = PyObject_GetAttr(link, s_context);
    if (context == NULL) return -1;
    size_t mark;
    int rc = -1;
    uint32_t flags;
    if (begin(b, (13 << 3) | 2, &mark) == 0 &&
        put_id_field(b, (1 << 3) | 2, context, CTX_TRACE_ID, s_trace_id, 16) == 0 &&
        put_id_field(b, (2 << 3) | 2, context, CTX_SPAN_ID, s_span_id, 8) == 0 &&
        put_attr_attributes(b, (4 << 3) | 2, link, mode) == 0 &&
        put_dropped_attributes(b, (5 << 3) | 0, link) == 0 &&
        (!(mode & M_FLAGS) ||
         (span_flags(context, &flags) == 0 && put_varint(b, (6 << 3) | 5) == 0 &&
          put_fixed32(b, flags) == 0)) &&
        end(b, mark) == 0)
        rc = 0;
    Py_DECREF(context);
    return rc;
}

static int put_links(Buf *b, PyObject *links, int mode) {
    PyObject *seq = PySequence_Fast(links, "links");
    if (seq == NULL) return -1;
    int rc = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++)
        rc = put_link(b, PySequence_Fast_GET_ITEM(seq, i), mode);
    Py_DECREF(seq);
    return rc;
}

static int put_status(Buf *b, PyObject *status) {
    int rc = 0;
    if (status != Py_None) {
        size_t mark;
        PyObject *code = NULL, *code_value = NULL;
        rc = -1;
        if (begin(b, (15 << 3) | 2, &mark) == 0 &&
            put_attr_string(b, (2 << 3) | 2, status, s_description) == 0 &&
            (code = PyObject_GetAttr(status, s_status_code)) != NULL &&
            (code_value = PyObject_GetAttr(code, s_value)) != NULL &&
            put_uint_field(b, (3 << 3) | 0, code_value, INT32_MAX) == 0 && end(b, mark) == 0)
            rc = 0;
        Py_XDECREF(code);
        Py_XDECREF(code_value);
    }
    return rc;
}

static int put_kind(Buf *b, PyObject *kind) {
    PyObject *value = PyObject_GetAttr(kind, s_value);
    if (value == NULL) return -1;
    long k = PyLong_Check(value) ? PyLong_AsLong(value) : -1;
    Py_DECREF(value);
    if (k < 0 || k > 4) {
        PyErr_Clear();
        return unsupported("span kind");
    }
    /* API SpanKind INTERNAL=0 … CONSUMER=4; OTLP SPAN_KIND_INTERNAL=1 … CONSUMER=5 */
    return put_varint(b, (6 << 3) | 0) || put_varint(b, (uint64_t)k + 1) ? -1 : 0;
}

/* What a span's encoding reads, each a new reference. */
typedef struct {
    PyObject *context, *parent, *name, *kind, *start, *end, *attributes, *dropped_attributes,
        *events, *dropped_events, *links, *dropped_links, *status;
} SpanFields;

#define SPAN_FIELDS 13

static void release_fields(SpanFields *f) {
    PyObject **all = (PyObject **)f;
    for (int i = 0; i < SPAN_FIELDS; i++) Py_CLEAR(all[i]);
}

/* A registered lean span's fields, from its __dict__ or (fields it has not set) its class:
 * 1 when read, 0 when it holds anything the SDK's properties would turn into something else
 * (then `sdk_fields` reads it), -1 on error. Its properties return these same fields: the
 * dict while every attribute is plain (no drops), the shared empty tuple until the first
 * event or link (none dropped). */
static int lean_fields(PyObject *span, SpanFields *f) {
    PyObject *dict = PyObject_GenericGetDict(span, NULL);
    if (dict == NULL) return -1;
    PyObject *names[] = {s__context, s__parent, s__name, s__kind, s__start_time, s__end_time,
                         s__attributes, s__events, s__links, s__status};
    PyObject *got[10] = {NULL};
    int rc = 1;
    for (int i = 0; i < 10 && rc == 1; i++) {
        got[i] = Py_XNewRef(PyDict_GetItemWithError(dict, names[i]));
        if (got[i] == NULL && !PyErr_Occurred()) got[i] = PyObject_GetAttr(span, names[i]);
        if (got[i] == NULL) rc = -1;
    }
    Py_DECREF(dict);
    if (rc == 1 && (!PyDict_CheckExact(got[6]) || !PyTuple_CheckExact(got[7]) ||
                    PyTuple_GET_SIZE(got[7]) != 0 || !PyTuple_CheckExact(got[8]) ||
                    PyTuple_GET_SIZE(got[8]) != 0))
        rc = 0;
    PyObject *zero = rc == 1 ? PyLong_FromLong(0) : NULL;
    if (rc == 1 && zero == NULL) rc = -1;
    if (rc == 1) {
        f->context = got[0];
        f->parent = got[1];
        f->name = got[2];
        f->kind = got[3];
        f->start = got[4];
        f->end = got[5];
        f->attributes = got[6];
        f->events = got[7];
        f->links = got[8];
        f->status = got[9];
        f->dropped_attributes = Py_NewRef(zero);
        f->dropped_events = Py_NewRef(zero);
        f->dropped_links = zero;
        return 1;
    }
    for (int i = 0; i < 10; i++) Py_XDECREF(got[i]);
    return rc;
}

/* Any ReadableSpan's fields, through its public properties. */
static int sdk_fields(PyObject *span, SpanFields *f) {
    if ((f->attributes = attributes_of(span)) == NULL ||
        (f->context = PyObject_CallMethodNoArgs(span, s_get_span_context)) == NULL ||
        (f->parent = PyObject_GetAttr(span, s_parent)) == NULL ||
        (f->name = PyObject_GetAttr(span, s_name)) == NULL ||
        (f->kind = PyObject_GetAttr(span, s_kind)) == NULL ||
        (f->start = PyObject_GetAttr(span, s_start_time)) == NULL ||
        (f->end = PyObject_GetAttr(span, s_end_time)) == NULL ||
        (f->dropped_attributes = PyObject_GetAttr(span, s_dropped_attributes)) == NULL ||
        (f->events = PyObject_GetAttr(span, s_events)) == NULL ||
        (f->dropped_events = PyObject_GetAttr(span, s_dropped_events)) == NULL ||
        (f->links = PyObject_GetAttr(span, s_links)) == NULL ||
        (f->dropped_links = PyObject_GetAttr(span, s_dropped_links)) == NULL ||
        (f->status = PyObject_GetAttr(span, s_status)) == NULL)
        return -1;
    return 0;
}

static int put_span_fields(Buf *b, SpanFields *f, int mode) {
    size_t mark;
    uint32_t flags = 0;
    if (begin(b, (2 << 3) | 2, &mark) == 0 &&
        put_id_field(b, (1 << 3) | 2, f->context, CTX_TRACE_ID, s_trace_id, 16) == 0 &&
        put_id_field(b, (2 << 3) | 2, f->context, CTX_SPAN_ID, s_span_id, 8) == 0 &&
        put_trace_state(b, f->context) == 0 &&
        (f->parent == Py_None ||
         put_id_field(b, (4 << 3) | 2, f->parent, CTX_SPAN_ID, s_span_id, 8) == 0) &&
        put_string_field(b, (5 << 3) | 2, f->name) == 0 && put_kind(b, f->kind) == 0 &&
        put_fixed64_field(b, (7 << 3) | 1, f->start) == 0 &&
        put_fixed64_field(b, (8 << 3) | 1, f->end) == 0 &&
        put_attributes(b, (9 << 3) | 2, f->attributes, mode) == 0 &&
        put_uint_field(b, (10 << 3) | 0, f->dropped_attributes, UINT32_MAX) == 0 &&
        put_events(b, f->events, mode) == 0 &&
        put_uint_field(b, (12 << 3) | 0, f->dropped_events, UINT32_MAX) == 0 &&
        put_links(b, f->links, mode) == 0 &&
        put_uint_field(b, (14 << 3) | 0, f->dropped_links, UINT32_MAX) == 0 &&
        put_status(b, f->status) == 0 &&
        (!(mode & M_FLAGS) ||
         (span_flags(f->parent, &flags) == 0 && put_varint(b, (16 << 3) | 5) == 0 &&
          put_fixed32(b, flags) == 0)) &&
        end(b, mark) == 0)
        return 0;
    return -1;
}

static int put_span(Buf *b, PyObject *span, int mode) {
    SpanFields f = {0};
    int read = 0;
    if (lean_type != NULL && (PyObject *)Py_TYPE(span) == lean_type) read = lean_fields(span, &f);
    if (read == 0) read = sdk_fields(span, &f) == 0 ? 1 : -1;
    int rc = read == 1 ? put_span_fields(b, &f, mode) : -1;
    release_fields(&f);
    return rc;
}

static int put_scope(Buf *b, PyObject *scope, int mode) {
    size_t mark;
    if (begin(b, (1 << 3) | 2, &mark)) return -1;
    if (scope != Py_None) {
        if (put_attr_string(b, (1 << 3) | 2, scope, s_name) ||
            put_attr_string(b, (2 << 3) | 2, scope, s_version))
            return -1;
        if (mode & M_SCOPE_ATTRS) {
            PyObject *attributes = PyObject_GetAttr(scope, s_attributes);
            if (attributes == NULL) return -1;
            int rc = put_attributes(b, (3 << 3) | 2, attributes, mode);
            Py_DECREF(attributes);
            if (rc) return -1;
        }
    }
    return end(b, mark);
}

static int put_schema_url(Buf *b, PyObject *owner, int mode) {
    if (!(mode & M_SCHEMA) || owner == Py_None) return 0;
    return put_attr_string(b, (3 << 3) | 2, owner, s_schema_url);
}

/* One ResourceSpans: (resource, [(scope or None, [span, ...]), ...]). */
static int put_resource_spans(Buf *b, PyObject *group, int mode) {
    if (!PyTuple_Check(group) || PyTuple_GET_SIZE(group) != 2 ||
        !PyList_Check(PyTuple_GET_ITEM(group, 1))) {
        PyErr_SetString(PyExc_TypeError, "expected (resource, [(scope, [spans])])");
        return -1;
    }
    PyObject *resource = PyTuple_GET_ITEM(group, 0);
    PyObject *scopes = PyTuple_GET_ITEM(group, 1);
    size_t mark, inner;
    if (begin(b, (1 << 3) | 2, &mark) || begin(b, (1 << 3) | 2, &inner) ||
        put_attr_attributes(b, (1 << 3) | 2, resource, mode) || end(b, inner))
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(scopes); i++) {
        PyObject *entry = PyList_GET_ITEM(scopes, i);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 ||
            !PyList_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "expected (scope, [spans])");
            return -1;
        }
        PyObject *scope = PyTuple_GET_ITEM(entry, 0);
        PyObject *spans = PyTuple_GET_ITEM(entry, 1);
        size_t scope_mark;
        if (begin(b, (2 << 3) | 2, &scope_mark) || put_scope(b, scope, mode)) return -1;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(spans); j++) {
            PyObject *item = PyList_GET_ITEM(spans, j);
            if (PyBytes_Check(item)) { /* encode_span's output: a header, then the Span field */
                Py_ssize_t n = PyBytes_GET_SIZE(item);
                if (n < SPAN_HEADER) {
                    PyErr_SetString(PyExc_ValueError, "not an encoded span");
                    return -1;
                }
                if (put_raw(b, PyBytes_AS_STRING(item) + SPAN_HEADER, (size_t)(n - SPAN_HEADER)))
                    return -1;
            } else if (put_span(b, item, mode)) {
                return -1;
            }
        }
        if (put_schema_url(b, scope, mode) || end(b, scope_mark)) return -1;
    }
    if (put_schema_url(b, resource, mode)) return -1;
    return end(b, mark);
}

static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *groups;
    int mode;
    if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &groups, &mode)) return NULL;
    Buf b = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(groups); i++) {
        if (put_resource_spans(&b, PyList_GET_ITEM(groups, i), mode)) {
            free(b.data);
            return NULL;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    free(b.data);
    return out;
}

/* encode_span(span, mode, group) -> bytes: a 4-byte little-endian `group` (the caller's key
 * for the span's resource and scope), then the span as ScopeSpans.spans writes it; `encode`
 * copies such bytes in place of a span object. */
static PyObject *encode_span(PyObject *self, PyObject *args) {
    PyObject *span;
    int mode;
    unsigned int group;
    if (!PyArg_ParseTuple(args, "OiI", &span, &mode, &group)) return NULL;
    Buf b = {NULL, 0, 0};
    if (put_fixed32(&b, group) || put_span(&b, span, mode)) {
        free(b.data);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    free(b.data);
    return out;
}

/* register(lean_span_type, span_context_type or None): the types read field by field. */
static PyObject *register_types(PyObject *self, PyObject *args) {
    PyObject *lean, *context;
    if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &lean, &context)) return NULL;
    if (context != Py_None && !PyType_Check(context)) {
        PyErr_SetString(PyExc_TypeError, "context type: a type or None");
        return NULL;
    }
    Py_XSETREF(lean_type, Py_NewRef(lean));
    Py_XSETREF(context_type, context == Py_None ? NULL : Py_NewRef(context));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"register", register_types, METH_VARARGS,
     "register(lean_span_type, span_context_type or None): read these types' fields "
     "directly (see the module's comment)."},
    {"encode_span", encode_span, METH_VARARGS,
     "encode_span(span, mode, group) -> bytes: one span, ready for encode's span lists."},
    {"encode", encode, METH_VARARGS,
     "encode(groups, mode) -> bytes: an ExportTraceServiceRequest of "
     "[(resource, [(scope, [span, ...]), ...]), ...]; raises Unsupported where the SDK's "
     "encoder must be used."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpencode", "OTLP span encoder.", -1, methods,
    NULL, NULL, NULL, NULL,
};

#define INTERN(var, text)                                   \
    do {                                                    \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                                    \
    } while (0)

PyMODINIT_FUNC PyInit__otlpencode(void) {
    INTERN(s_attributes, "attributes");
    INTERN(s_schema_url, "schema_url");
    INTERN(s_name, "name");
    INTERN(s_version, "version");
    INTERN(s_get_span_context, "get_span_context");
    INTERN(s_trace_id, "trace_id");
    INTERN(s_span_id, "span_id");
    INTERN(s_trace_state, "trace_state");
    INTERN(s_parent, "parent");
    INTERN(s_kind, "kind");
    INTERN(s_value, "value");
    INTERN(s_start_time, "start_time");
    INTERN(s_end_time, "end_time");
    INTERN(s_events, "events");
    INTERN(s_links, "links");
    INTERN(s_status, "status");
    INTERN(s_dropped_attributes, "dropped_attributes");
    INTERN(s_dropped_events, "dropped_events");
    INTERN(s_dropped_links, "dropped_links");
    INTERN(s_is_remote, "is_remote");
    INTERN(s_timestamp, "timestamp");
    INTERN(s_context, "context");
    INTERN(s_status_code, "status_code");
    INTERN(s_description, "description");
    INTERN(s_dropped, "dropped");
    INTERN(s__attributes, "_attributes");
    INTERN(s__dict, "_dict");
    INTERN(s__context, "_context");
    INTERN(s__parent, "_parent");
    INTERN(s__name, "_name");
    INTERN(s__kind, "_kind");
    INTERN(s__start_time, "_start_time");
    INTERN(s__end_time, "_end_time");
    INTERN(s__events, "_events");
    INTERN(s__links, "_links");
    INTERN(s__status, "_status");
    if ((shift64 = PyLong_FromLong(64)) == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Unsupported = PyErr_NewException("_otlpencode.Unsupported", PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
