/* azs_syslog.encode._speedups: the compiled half of the renderer's fused path (optional).
 *
 * One function does, for a Windows event of a known shape, what render.Renderer.render_line's
 * pure-Python fused path does with a dozen Python-level steps: check every field's type and
 * value against the shape's plan and write the escaped " Key=value" extension pairs, as UTF-8.
 * Anything it is not sure of returns None, and the caller takes the reference path, which
 * gives the same bytes or explains the error (tests/test_render_fast.py holds all three paths
 * to each other). render takes the objects orjson made of the line; render_text, in
 * _speedups_text.c, reads the line's JSON text itself (what both share: _speedups.h).
 *
 *   compile_plan(size, nret, entries[, shape]) -> plan (a capsule)
 *       size: the number of fields of the shape; nret: the number of values returned;
 *       entries: (field, kind, prefix, ret, suffix) in the order the pairs are written;
 *       prefix: b" Key=" (None: checked, not written); ret: the slot the value is returned in
 *       (-1: none); suffix: text written after a joined list (None: nothing); shape: the
 *       fields in the order of the JSON text (without it, render_text always doubts).
 *   render(obj, plan) -> (extensions: bytes, value of slot 0, ...) | None
 *   render_text(line, plan) -> the same, from the JSON text line
 *   compile_context(...), render_message(line, plan, context, accepted_ms): the whole
 *       message (_speedups_message.c)
 *
 * Escaping (cef.py, docs/cef-mapping.md): \ -> \\, = -> \=, CR -> \r, LF -> \n, NUL -> U+FFFD;
 * VT, FF, FS, GS, RS, NEL, U+2028, U+2029 -> \n; TAB -> space; other C0, DEL, C1 -> U+FFFD.
 */
#include "_speedups.h"


static void
plan_release(Plan *plan)
{
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        Py_XDECREF(plan->entries[i].field);
        Py_XDECREF(plan->entries[i].prefix);
        Py_XDECREF(plan->entries[i].suffix);
        Py_XDECREF(plan->entries[i].last);
    }
    PyMem_Free(plan->order);
    PyMem_Free(plan);
}

static void
plan_free(PyObject *capsule)
{
    Plan *plan = (Plan *)PyCapsule_GetPointer(capsule, PLAN_NAME);
    if (plan == NULL) {
        PyErr_Clear();
        return;
    }
    plan_release(plan);
}

/* plan->order from the shape (the fields in the order of the JSON text): each one's entry.
 * 0, and no order, when a field has no entry or two entries one field (the text path then
 * never applies); -1 on an error. */
static int
set_order(Plan *plan, PyObject *shape)
{
    if (!PyTuple_CheckExact(shape)) {
        PyErr_SetString(PyExc_TypeError, "compile_plan: the shape must be a tuple");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(shape);
    if (size != plan->size || size != plan->count) {
        return 0;
    }
    Py_ssize_t *order = PyMem_Calloc((size_t)(size ? size : 1), sizeof(Py_ssize_t));
    if (order == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *name = PyTuple_GET_ITEM(shape, i);
        order[i] = -1;
        for (Py_ssize_t j = 0; j < plan->count; j++) {
            int same = PyUnicode_Check(name) ? PyUnicode_Compare(name, plan->entries[j].field) : 1;
            if (same == -1 && PyErr_Occurred()) {
                PyMem_Free(order);
                return -1;
            }
            if (same == 0) {
                order[i] = j;
                break;
            }
        }
        for (Py_ssize_t k = 0; k < i && order[i] >= 0; k++) {
            if (order[k] == order[i]) {
                order[i] = -1;
            }
        }
        if (order[i] < 0) {
            PyMem_Free(order);
            return 0;
        }
    }
    plan->order = order;
    return 0;
}

static PyObject *
compile_plan(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t size, nret;
    PyObject *entries, *shape = NULL;
    if (!PyArg_ParseTuple(args, "nnO!|O:compile_plan", &size, &nret, &PyTuple_Type, &entries,
                          &shape)) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(entries);
    if (size < 0 || nret < 0 || nret > 64) {
        PyErr_SetString(PyExc_ValueError, "compile_plan: bad size or nret");
        return NULL;
    }
    Plan *plan = PyMem_Calloc(1, sizeof(Plan) + (size_t)count * sizeof(Entry));
    if (plan == NULL) {
        return PyErr_NoMemory();
    }
    plan->size = size;
    plan->nret = nret;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *field, *prefix, *suffix;
        int kind;
        Py_ssize_t ret;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(entries, i), "UiOnO:compile_plan entry", &field,
                              &kind, &prefix, &ret, &suffix)) {
            goto fail;
        }
        if (kind < 0 || kind >= K_COUNT || ret < -1 || ret >= nret ||
            (prefix != Py_None && !PyBytes_CheckExact(prefix)) ||
            (suffix != Py_None && !PyUnicode_CheckExact(suffix))) {
            PyErr_SetString(PyExc_ValueError, "compile_plan: bad entry");
            goto fail;
        }
        Entry *entry = &plan->entries[i];
        entry->key = PyUnicode_AsUTF8AndSize(field, &entry->key_len);
        if (entry->key == NULL) {
            goto fail;
        }
        Py_INCREF(field);
        entry->field = field;
        entry->prefix = prefix == Py_None ? NULL : Py_NewRef(prefix);
        entry->suffix = suffix == Py_None ? NULL : Py_NewRef(suffix);
        entry->kind = kind;
        entry->ret = ret;
        plan->count = i + 1;
    }
    if (shape != NULL && set_order(plan, shape) < 0) {
        goto fail;
    }
    PyObject *capsule = PyCapsule_New(plan, PLAN_NAME, plan_free);
    if (capsule != NULL) {
        return capsule;
    }
fail:
    plan_release(plan);
    return NULL;
}

/* The escaped UTF-8 of a str. 1: it has no UTF-8 (a lone surrogate): the caller doubts. */
static int
put_text(Buffer *buf, PyObject *text)
{
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    if (utf8 == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return -1;
        }
        PyErr_Clear();
        return 1;
    }
    return put_escaped(buf, utf8, n);
}

/* An int in decimal. */
static int
put_decimal(Buffer *buf, PyObject *value)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        /* By hand: snprintf costs more than the rest of a small field. */
        return put_magnitude(buf,
                             number < 0 ? 0ULL - (unsigned long long)number
                                        : (unsigned long long)number,
                             number < 0);
    }
    PyObject *text = PyObject_Str(value);
    if (text == NULL) {
        return -1;
    }
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    int status = utf8 == NULL ? -1 : put(buf, utf8, n);
    Py_DECREF(text);
    return status;
}

/* -1 below zero, 0 zero, 1 above (an exact int). */
static int
sign_of(PyObject *value)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        return overflow;
    }
    return (number > 0) - (number < 0);
}

/* -- render ---------------------------------------------------------------------------------- */

/* One item of a K_LIST array, as the reference path joins it (windows.join_list). */
static int
put_item(Buffer *buf, PyObject *item)
{
    if (PyUnicode_CheckExact(item)) {
        return put_text(buf, item);
    }
    if (PyLong_CheckExact(item)) {
        return put_decimal(buf, item);
    }
    if (item == Py_None) {
        return 0;
    }
    if (item == Py_True) {
        return put(buf, "true", 4); /* as Windows writes a boolean in Event XML */
    }
    if (item == Py_False) {
        return put(buf, "false", 5);
    }
    return DOUBT;
}

/* *count: the length of the last K_LIST array (K_NAMES must match it), -1 when none. */
static int
render_entry(const Entry *entry, PyObject *value, Buffer *buf, Py_ssize_t *count_seen)
{
    int status = 0;
    Py_ssize_t mark = buf->len; /* where the pair starts: an empty value takes it back */
    if (entry->prefix != NULL &&
        put(buf, PyBytes_AS_STRING(entry->prefix), PyBytes_GET_SIZE(entry->prefix)) < 0) {
        return -1;
    }
    Py_ssize_t start = buf->len;
    switch (entry->kind) {
    case K_STR:
    case K_REQUIRED:
        if (!PyUnicode_CheckExact(value)) {
            return DOUBT;
        }
        if (PyUnicode_GET_LENGTH(value) == 0) {
            if (entry->kind == K_REQUIRED) {
                return DOUBT;
            }
            buf->len = mark;
            return 0;
        }
        return put_text(buf, value);
    case K_UINT:
        if (!PyLong_CheckExact(value) || sign_of(value) < 0) {
            return DOUBT;
        }
        return put_decimal(buf, value);
    case K_LEVEL: {
        if (!PyLong_CheckExact(value)) {
            return DOUBT;
        }
        int overflow;
        long level = PyLong_AsLongAndOverflow(value, &overflow);
        if (overflow || level < 0 || level > 5) {
            return DOUBT;
        }
        char digit = (char)('0' + level);
        return put(buf, &digit, 1);
    }
    case K_LIST:
    case K_NAMES: {
        if (!PyList_CheckExact(value)) {
            return DOUBT;
        }
        Py_ssize_t count = PyList_GET_SIZE(value);
        if (entry->kind == K_NAMES && count != *count_seen) {
            return DOUBT;
        }
        if (entry->kind == K_LIST) {
            *count_seen = count;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *item = PyList_GET_ITEM(value, i);
            if (i > 0 && put(buf, "!!", 2) < 0) {
                return -1;
            }
            if (entry->kind == K_NAMES && !PyUnicode_CheckExact(item)) {
                return DOUBT;
            }
            status = put_item(buf, item);
            if (status != 0) {
                return status;
            }
        }
        if (entry->suffix != NULL) {
            return put_text(buf, entry->suffix);
        }
        if (entry->prefix == NULL || buf->len == start) {
            buf->len = mark; /* joined to "", or checked only: left out */
        }
        return 0;
    }
    case K_KEYWORDS: {
        if (!PyLong_CheckExact(value)) {
            return DOUBT;
        }
        unsigned long long mask = PyLong_AsUnsignedLongLongMask(value);
        if (mask == (unsigned long long)-1 && PyErr_Occurred()) {
            return -1;
        }
        return put_keywords(buf, mask);
    }
    case K_TYPE:
        if (!PyUnicode_CheckExact(value) || PyUnicode_CompareWithASCIIString(value, "windows")) {
            return DOUBT;
        }
        return 0;
    case K_TEXT:
    case K_TIME:
        return PyUnicode_CheckExact(value) ? 0 : DOUBT;
    }
    return DOUBT;
}

/* The epoch ms of a str in the form utc_millis_text reads, as a new int; NULL (no error set)
 * for any other text. */
static PyObject *
utc_millis(PyObject *text)
{
    long long ms;
    if (!PyUnicode_IS_ASCII(text) ||
        !utc_millis_text((const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), &ms)) {
        return NULL;
    }
    return PyLong_FromLongLong(ms);
}

static PyObject *
render(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "render(obj, plan) takes two arguments");
        return NULL;
    }
    PyObject *obj = args[0];
    Plan *plan = (Plan *)PyCapsule_GetPointer(args[1], PLAN_NAME);
    if (plan == NULL) {
        return NULL;
    }
    if (!PyDict_CheckExact(obj) || PyDict_GET_SIZE(obj) != plan->size) {
        Py_RETURN_NONE;
    }
    PyObject *result = PyTuple_New(plan->nret + 1);
    if (result == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 1; i <= plan->nret; i++) {
        PyTuple_SET_ITEM(result, i, Py_NewRef(Py_None));
    }
    Buffer buf;
    buf.data = buf.stack;
    buf.len = 0;
    buf.cap = sizeof buf.stack;
    int status = 0;
    Py_ssize_t count_seen = -1;
    for (Py_ssize_t i = 0; i < plan->count && status == 0; i++) {
        const Entry *entry = &plan->entries[i];
        PyObject *value = PyDict_GetItemWithError(obj, entry->field); /* borrowed */
        if (value == NULL) {
            status = PyErr_Occurred() ? -1 : DOUBT;
            break;
        }
        status = render_entry(entry, value, &buf, &count_seen);
        if (status == 0 && entry->ret >= 0) {
            PyObject *returned = NULL;
            if (entry->kind == K_TIME) {
                returned = utc_millis(value);
                if (returned == NULL && PyErr_Occurred()) {
                    status = -1;
                    break;
                }
            }
            if (returned == NULL) {
                returned = Py_NewRef(value);
            }
            PyObject *old = PyTuple_GET_ITEM(result, entry->ret + 1);
            PyTuple_SET_ITEM(result, entry->ret + 1, returned);
            Py_DECREF(old);
        }
    }
    PyObject *extensions = NULL;
    if (status == 0) {
        extensions = PyBytes_FromStringAndSize(buf.data, buf.len);
        if (extensions == NULL) {
            status = -1;
        }
    }
    if (buf.data != buf.stack) {
        PyMem_Free(buf.data);
    }
    if (status != 0) {
        Py_DECREF(result);
        if (status < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyTuple_SET_ITEM(result, 0, extensions);
    return result;
}

static PyMethodDef methods[] = {
    {"compile_plan", compile_plan, METH_VARARGS,
     "compile_plan(size, nret, entries) -> plan: see the module's source."},
    {"render", (PyCFunction)(void (*)(void))render, METH_FASTCALL,
     "render(obj, plan) -> (extensions, *values) | None: see the module's source."},
    {"render_text", (PyCFunction)(void (*)(void))render_text, METH_FASTCALL,
     "render_text(line, plan) -> (extensions, *values) | None: see _speedups_text.c."},
    {"compile_context", compile_context, METH_VARARGS,
     "compile_context(...) -> context: see _speedups_message.c."},
    {"render_message", (PyCFunction)(void (*)(void))render_message, METH_FASTCALL,
     "render_message(line, plan, context, accepted_ms) -> bytes | False | None: see "
     "_speedups_message.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "azs_syslog.encode._speedups",
    .m_doc = "The compiled half of the renderer's fused path (optional; see render.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}

