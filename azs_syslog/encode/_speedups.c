/* azs_syslog.encode._speedups: the compiled half of the renderer's fused path (optional).
 *
 * One function does, for a Windows event of a known shape, what render.Renderer.render_line's
 * pure-Python fused path does with a dozen Python-level steps: check every field's type and
 * value against the shape's plan and write the escaped " Key=value" extension pairs, as UTF-8.
 * Anything it is not sure of returns None, and the caller takes the reference path, which
 * gives the same bytes or explains the error (tests/test_render_fast.py holds all three paths
 * to each other). It never parses: the objects come from orjson.
 *
 *   compile_plan(size, nret, entries) -> plan (a capsule)
 *       size: the number of fields of the shape; nret: the number of values returned;
 *       entries: (field, kind, prefix, ret, suffix) in the order the pairs are written;
 *       prefix: b" Key=" (None: checked, not written); ret: the slot the value is returned in
 *       (-1: none); suffix: text written after a joined list (None: nothing).
 *   render(obj, plan) -> (extensions: bytes, value of slot 0, ...) | None
 *
 * Escaping (cef.py, docs/cef-mapping.md): \ -> \\, = -> \=, CR -> \r, LF -> \n, NUL -> U+FFFD;
 * VT, FF, FS, GS, RS, NEL, U+2028, U+2029 -> \n; TAB -> space; other C0, DEL, C1 -> U+FFFD.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

/* Keep in step with encode/plan.py (NATIVE_*). A value the reference path leaves out (an empty
 * string, an array that joins to nothing) is left out here too: its pair is not written. */
enum {
    K_STR = 0,      /* a string, written (left out when empty) */
    K_UINT = 1,     /* an integer >= 0, written in decimal */
    K_LEVEL = 2,    /* an integer 0-5, written in decimal */
    K_LIST = 3,     /* an array of strings, integers, booleans and nulls, written joined with
                     * "!!" (left out when that is empty and there is no suffix) */
    K_KEYWORDS = 4, /* an integer, written as 0x%016X of its low 64 bits */
    K_TYPE = 5,     /* the string "windows", not written */
    K_TEXT = 6,     /* a string, not written */
    K_REQUIRED = 7, /* a non-empty string, written (provider_name: empty is an error) */
    K_NAMES = 8,    /* an array of strings as long as the K_LIST array just before it, written
                     * joined with "!!" (left out when empty; not written without a prefix) */
    K_TIME = 9,     /* a string, not written; returned as epoch milliseconds (an int) when it
                     * is "YYYY-MM-DDThh:mm:ss.mmmZ", a valid date and time, else as it is */
    K_COUNT = 10
};

#define PLAN_NAME "azs_syslog.encode._speedups.plan"

typedef struct {
    PyObject *field;  /* str */
    PyObject *prefix; /* bytes or NULL */
    PyObject *suffix; /* str or NULL */
    int kind;
    Py_ssize_t ret;
} Entry;

typedef struct {
    Py_ssize_t size;
    Py_ssize_t nret;
    Py_ssize_t count;
    Entry entries[];
} Plan;

static void
plan_free(PyObject *capsule)
{
    Plan *plan = (Plan *)PyCapsule_GetPointer(capsule, PLAN_NAME);
    if (plan == NULL) {
        PyErr_Clear();
        return;
    }
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        Py_XDECREF(plan->entries[i].field);
        Py_XDECREF(plan->entries[i].prefix);
        Py_XDECREF(plan->entries[i].suffix);
    }
    PyMem_Free(plan);
}

static PyObject *
compile_plan(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t size, nret;
    PyObject *entries;
    if (!PyArg_ParseTuple(args, "nnO!:compile_plan", &size, &nret, &PyTuple_Type, &entries)) {
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
        Py_INCREF(field);
        entry->field = field;
        entry->prefix = prefix == Py_None ? NULL : Py_NewRef(prefix);
        entry->suffix = suffix == Py_None ? NULL : Py_NewRef(suffix);
        entry->kind = kind;
        entry->ret = ret;
        plan->count = i + 1;
    }
    PyObject *capsule = PyCapsule_New(plan, PLAN_NAME, plan_free);
    if (capsule != NULL) {
        return capsule;
    }
fail:
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        Py_XDECREF(plan->entries[i].field);
        Py_XDECREF(plan->entries[i].prefix);
        Py_XDECREF(plan->entries[i].suffix);
    }
    PyMem_Free(plan);
    return NULL;
}

#define DOUBT 1

/* -- an output buffer ------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    char stack[4096];
} Buffer;

static int
reserve(Buffer *buf, Py_ssize_t extra)
{
    if (extra <= buf->cap - buf->len) {
        return 0;
    }
    if (extra > PY_SSIZE_T_MAX / 2 - buf->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = buf->cap * 2;
    if (cap < buf->len + extra) {
        cap = buf->len + extra;
    }
    char *data;
    if (buf->data == buf->stack) {
        data = PyMem_Malloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, buf->data, (size_t)buf->len);
        }
    }
    else {
        data = PyMem_Realloc(buf->data, (size_t)cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int
put(Buffer *buf, const char *bytes, Py_ssize_t n)
{
    if (reserve(buf, n) < 0) {
        return -1;
    }
    memcpy(buf->data + buf->len, bytes, (size_t)n);
    buf->len += n;
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define LIKELY(x) (x)
#endif

/* What an extension value makes of each byte (cef.py): 0 copied; the others below. 0xC2 and
 * 0xE2 start the UTF-8 of the C1 controls (U+0080-U+009F) and of U+2028 / U+2029: the next
 * bytes decide. */
enum { E_COPY = 0, E_BACKSLASH, E_REPLACE, E_LINE, E_SPACE, E_CR, E_LF, E_C2, E_E2 };
static const unsigned char ESCAPED[256] = {
    [0x00] = E_REPLACE, [0x01] = E_REPLACE, [0x02] = E_REPLACE, [0x03] = E_REPLACE,
    [0x04] = E_REPLACE, [0x05] = E_REPLACE, [0x06] = E_REPLACE, [0x07] = E_REPLACE,
    [0x08] = E_REPLACE, ['\t'] = E_SPACE,   ['\n'] = E_LF,      [0x0B] = E_LINE,
    [0x0C] = E_LINE,    ['\r'] = E_CR,      [0x0E] = E_REPLACE, [0x0F] = E_REPLACE,
    [0x10] = E_REPLACE, [0x11] = E_REPLACE, [0x12] = E_REPLACE, [0x13] = E_REPLACE,
    [0x14] = E_REPLACE, [0x15] = E_REPLACE, [0x16] = E_REPLACE, [0x17] = E_REPLACE,
    [0x18] = E_REPLACE, [0x19] = E_REPLACE, [0x1A] = E_REPLACE, [0x1B] = E_REPLACE,
    [0x1C] = E_LINE,    [0x1D] = E_LINE,    [0x1E] = E_LINE,    [0x1F] = E_REPLACE,
    ['\\'] = E_BACKSLASH, ['='] = E_BACKSLASH, [0x7F] = E_REPLACE,
    [0xC2] = E_C2,      [0xE2] = E_E2,
};

static int
put_escaped(Buffer *buf, const char *text, Py_ssize_t n)
{
    /* At most 3 bytes out per byte in: a 1-byte control becomes U+FFFD. */
    if (n > PY_SSIZE_T_MAX / 4 || reserve(buf, 3 * n) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    const unsigned char *in = (const unsigned char *)text;
    char *out = buf->data + buf->len;
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        int action = ESCAPED[c];
        if (LIKELY(action == E_COPY)) {
            continue;
        }
        Py_ssize_t width = 1; /* the bytes of the character replaced */
        if (action == E_C2) {
            /* U+0080-U+009F: C2 80-C2 9F; U+0085 (NEL) is a line break. */
            if (i + 1 >= n || in[i + 1] > 0x9F) {
                continue;
            }
            action = in[i + 1] == 0x85 ? E_LINE : E_REPLACE;
            width = 2;
        }
        else if (action == E_E2) {
            /* U+2028 / U+2029: E2 80 A8 / E2 80 A9. */
            if (i + 2 >= n || in[i + 1] != 0x80 || (in[i + 2] != 0xA8 && in[i + 2] != 0xA9)) {
                continue;
            }
            action = E_LINE;
            width = 3;
        }
        memcpy(out, text + start, (size_t)(i - start));
        out += i - start;
        switch (action) {
        case E_REPLACE:
            *out++ = (char)0xEF; /* U+FFFD */
            *out++ = (char)0xBF;
            *out++ = (char)0xBD;
            break;
        case E_SPACE:
            *out++ = ' ';
            break;
        case E_CR:
            *out++ = '\\';
            *out++ = 'r';
            break;
        case E_LF:
        case E_LINE:
            *out++ = '\\';
            *out++ = 'n';
            break;
        default: /* E_BACKSLASH */
            *out++ = '\\';
            *out++ = (char)c;
        }
        i += width - 1;
        start = i + 1;
    }
    memcpy(out, text + start, (size_t)(n - start));
    out += n - start;
    buf->len = out - buf->data;
    return 0;
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
        char digits[24];
        char *end = digits + sizeof digits, *at = end;
        unsigned long long magnitude =
            number < 0 ? 0ULL - (unsigned long long)number : (unsigned long long)number;
        do {
            *--at = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude != 0);
        if (number < 0) {
            *--at = '-';
        }
        return put(buf, at, end - at);
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
        char digits[24];
        int n = snprintf(digits, sizeof digits, "0x%016llX", mask);
        return put(buf, digits, n);
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

/* "YYYY-MM-DDThh:mm:ss.mmmZ" (years 0001-9999, a real date, no leap second) -> epoch ms as a
 * new int; NULL (no error set) for any other text: the caller's parse_time reads it. */
static PyObject *
utc_millis(PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text) || PyUnicode_GET_LENGTH(text) != 24) {
        return NULL;
    }
    const char *t = (const char *)PyUnicode_DATA(text);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i]) {
            return NULL;
        }
    }
#define NUM2(i) ((t[i] - '0') * 10 + (t[(i) + 1] - '0'))
    long long year = NUM2(0) * 100 + NUM2(2);
    int month = NUM2(5), day = NUM2(8), hour = NUM2(11), minute = NUM2(14), second = NUM2(17);
    int millis = (t[20] - '0') * 100 + NUM2(21);
#undef NUM2
    static const int days_in[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1 ||
        day > days_in[month - 1] + (month == 2 && leap) || hour > 23 || minute > 59 ||
        second > 59) {
        return NULL;
    }
    /* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
    long long y = year - (month <= 2);
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    long long ms = ((days * 24 + hour) * 60 + minute) * 60 + second;
    return PyLong_FromLongLong(ms * 1000 + millis);
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
