/*
 * _leanattrs: the checks and stores behind a lean span's plain attribute dict
 * (otelml.instrument.spans), in C.
 *
 * Why C: a server span checks ~15 HTTP attributes when it starts, the route and status when
 * it ends, and ~25 feature/prediction attributes when its inference is recorded; in Python
 * (`frozenset.issuperset(map(type, ...))` passes, a zip into the dict) that is ~4 us of a
 * request that a 0.1 ms model serves. Plain means what the SDK stores unchanged on every
 * version: exact str keys (non-empty), exact bool/int/float/str values, strings within the
 * length limit.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int plain_scalar(PyObject *value, Py_ssize_t length) {
    if (PyUnicode_CheckExact(value))
        return length < 0 || PyUnicode_GET_LENGTH(value) <= length;
    return PyBool_Check(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value);
}

static int plain_key(PyObject *key) {
    return PyUnicode_CheckExact(key) && PyUnicode_GET_LENGTH(key) > 0;
}

/* plain_scalars(attributes: dict, length: int) -> bool: every key and value plain (length
 * < 0: no length limit). */
static PyObject *plain_scalars(PyObject *self, PyObject *args) {
    PyObject *attributes;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "O!n", &PyDict_Type, &attributes, &length)) return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(attributes, &pos, &key, &value))
        if (!plain_key(key) || !plain_scalar(value, length)) Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* add_row(attributes, keys, head, given, fields, answered, outputs, limit, length) -> bool:
 * one recorded inference into a span's plain dict, all or nothing. The values are `head`,
 * then `given[f]` for each of `fields`, then `answered[o]` for each of `outputs` (pydantic
 * models' __dict__), stored under `keys` in that order — only where every value is there
 * and plain, no key is set already and all fit under `limit` (< 0: none). False: nothing
 * stored. */
static PyObject *add_row(PyObject *self, PyObject *args) {
    PyObject *attributes, *keys, *head, *given, *fields, *answered, *outputs;
    Py_ssize_t limit, length;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!nn", &PyDict_Type, &attributes, &PyTuple_Type,
                          &keys, &PyTuple_Type, &head, &PyDict_Type, &given, &PyTuple_Type,
                          &fields, &PyDict_Type, &answered, &PyTuple_Type, &outputs, &limit,
                          &length))
        return NULL;
    Py_ssize_t n_head = PyTuple_GET_SIZE(head), n_fields = PyTuple_GET_SIZE(fields);
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (n != n_head + n_fields + PyTuple_GET_SIZE(outputs)) {
        PyErr_SetString(PyExc_ValueError, "keys and values differ in number");
        return NULL;
    }
    if (limit >= 0 && PyDict_GET_SIZE(attributes) + n > limit) Py_RETURN_FALSE;
    PyObject *stack[64];
    PyObject **values = n <= 64 ? stack : PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (values == NULL) return PyErr_NoMemory();
    int ok = 1;
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i), *value;
        if (i < n_head)
            value = PyTuple_GET_ITEM(head, i);
        else if (i < n_head + n_fields)
            value = PyDict_GetItemWithError(given, PyTuple_GET_ITEM(fields, i - n_head));
        else
            value = PyDict_GetItemWithError(answered,
                                            PyTuple_GET_ITEM(outputs, i - n_head - n_fields));
        if (value == NULL) {
            ok = PyErr_Occurred() ? -1 : 0;
            break;
        }
        int present = PyDict_Contains(attributes, key);
        if (present < 0) {
            ok = -1;
            break;
        }
        ok = !present && plain_key(key) && plain_scalar(value, length);
        values[i] = value;
    }
    for (Py_ssize_t i = 0; i < n && ok == 1; i++)
        if (PyDict_SetItem(attributes, PyTuple_GET_ITEM(keys, i), values[i])) ok = -1;
    if (values != stack) PyMem_Free(values);
    if (ok < 0) return NULL;
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"plain_scalars", plain_scalars, METH_VARARGS,
     "plain_scalars(attributes, length) -> bool: every key and value plain."},
    {"add_row", add_row, METH_VARARGS,
     "add_row(attributes, keys, head, given, fields, answered, outputs, limit, length) -> "
     "bool: one inference's plain values stored, all or nothing."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_leanattrs", "Plain attribute checks of lean spans.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__leanattrs(void) { return PyModule_Create(&module); }
