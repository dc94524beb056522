/* azs_syslog.encode._speedups: render_text, a Windows event of a known shape rendered from
 * its JSON text itself.
 *
 *   render_text(line, plan) -> (extensions: bytes, value of slot 0, ...) | None
 *
 * What the pure-Python fused path (RenderPlan.fields) returns for the objects orjson makes of
 * the line, without the dict and the strings orjson would build for every field (two thirds
 * of the time when the compiled path took orjson's objects): one pass reads the text
 * (_speedups_json.c: JSON, the plan's fields in the plan's order, where each value is); a
 * second writes the pairs from the text, in the order of the plan's entries. Only the values
 * returned are made objects; a time "YYYY-MM-DDThh:mm:ss.mmmZ" is returned as epoch ms.
 *
 * It doubts (returns None, and the caller takes the pure-Python fused path, which doubts in
 * its turn or not) at anything outside what the plans cover or what it is not sure of:
 * another shape or order of fields, a key holding an escape, a number that is not an integer
 * of 64 bits, a nested object, a lone surrogate (\ud800 written alone), a line that is not
 * one JSON object. tests/test_render_text.py holds it to the pure-Python path.
 */
#include "_speedups.h"

/* -- writing --------------------------------------------------------------------------------- */

static inline int
put_utf8(Buffer *buf, long code)
{
    char bytes[4];
    Py_ssize_t n;
    if (code < 0x80) {
        bytes[0] = (char)code;
        n = 1;
    }
    else if (code < 0x800) {
        bytes[0] = (char)(0xC0 | (code >> 6));
        bytes[1] = (char)(0x80 | (code & 0x3F));
        n = 2;
    }
    else if (code < 0x10000) {
        bytes[0] = (char)(0xE0 | (code >> 12));
        bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (code & 0x3F));
        n = 3;
    }
    else {
        bytes[0] = (char)(0xF0 | (code >> 18));
        bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (code & 0x3F));
        n = 4;
    }
    return put(buf, bytes, n);
}

/* The UTF-8 of a string holding escapes (read_string checked them) into out. DOUBT: a lone
 * surrogate, which has no UTF-8 (the reference path replaces or refuses it). */
static int
unescape(Buffer *out, const char *p, Py_ssize_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *slash = memchr(p, '\\', (size_t)(end - p));
        if (slash == NULL) {
            return put(out, p, end - p);
        }
        if (put(out, p, slash - p) < 0) {
            return -1;
        }
        char c = slash[1];
        long code;
        p = slash + 2;
        switch (c) {
        case 'b':
            code = '\b';
            break;
        case 'f':
            code = '\f';
            break;
        case 'n':
            code = '\n';
            break;
        case 'r':
            code = '\r';
            break;
        case 't':
            code = '\t';
            break;
        case 'u':
            code = hex4(p);
            p += 4;
            if (code >= 0xDC00 && code <= 0xDFFF) {
                return DOUBT;
            }
            if (code >= 0xD800 && code <= 0xDBFF) {
                long low = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
                if (low < 0xDC00 || low > 0xDFFF) {
                    return DOUBT;
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
            break;
        default: /* " \ / */
            code = c;
        }
        if (put_utf8(out, code) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A string value, escaped for CEF; with `check`, only checked (its escapes read, which may
 * doubt), nothing written. */
static int
put_string(Buffer *buf, const Value *value, int check)
{
    if (!value->escaped) {
        return check ? 0 : put_escaped(buf, value->at, value->len);
    }
    Buffer text;
    BUFFER_INIT(text);
    int status = unescape(&text, value->at, value->len);
    if (status == 0 && !check) {
        status = put_escaped(buf, text.data, text.len);
    }
    release(&text);
    return status;
}

/* A value as the object orjson would make of it (a string, an int), or NULL: *status says
 * whether that is an error (-1) or a doubt. */
static PyObject *
make_object(const Value *value, int *status)
{
    if (value->type == J_INT) {
        if (value->negative) {
            return PyLong_FromLongLong((long long)(0ULL - value->magnitude));
        }
        return PyLong_FromUnsignedLongLong(value->magnitude);
    }
    if (!value->escaped) {
        return PyUnicode_DecodeUTF8(value->at, value->len, NULL);
    }
    Buffer text;
    BUFFER_INIT(text);
    PyObject *object = NULL;
    *status = unescape(&text, value->at, value->len);
    if (*status == 0) {
        object = PyUnicode_DecodeUTF8(text.data, text.len, NULL);
    }
    release(&text);
    return object;
}

/* The items of a K_LIST or K_NAMES array, joined with "!!" (windows.join_list); checked only
 * (the same doubts, nothing written) when `check`. */
static int
put_items(const Entry *entry, const Value *value, Buffer *buf, int check)
{
    const char *p = value->at;
    for (Py_ssize_t i = 0; i < value->len; i++) {
        Value item;
        next_item(&p, value->end, &item);
        if (i > 0 && !check && put(buf, "!!", 2) < 0) {
            return -1;
        }
        int status = 0;
        switch (item.type) {
        case J_STRING:
            status = put_string(buf, &item, check);
            break;
        case J_INT:
            status = entry->kind == K_NAMES ? DOUBT
                     : check               ? 0
                                           : put_magnitude(buf, item.magnitude, item.negative);
            break;
        case J_TRUE: /* as Windows writes a boolean in Event XML */
            status = entry->kind == K_NAMES ? DOUBT : check ? 0 : put(buf, "true", 4);
            break;
        case J_FALSE:
            status = entry->kind == K_NAMES ? DOUBT : check ? 0 : put(buf, "false", 5);
            break;
        default: /* null: nothing */
            status = entry->kind == K_NAMES ? DOUBT : 0;
        }
        if (status != 0) {
            return status;
        }
    }
    return 0;
}

/* One entry: its pair written (or left out, or only checked), or a doubt. With `check`, the
 * same doubts, but strings and arrays are not written (an event the OutputSeverity filter
 * drops: its pairs are never read). */
static int
write_entry(const Entry *entry, const Value *value, Buffer *buf, Py_ssize_t *count_seen,
            int check)
{
    Py_ssize_t mark = buf->len;
    if (entry->prefix != NULL &&
        put(buf, PyBytes_AS_STRING(entry->prefix), PyBytes_GET_SIZE(entry->prefix)) < 0) {
        return -1;
    }
    Py_ssize_t start = buf->len;
    switch (entry->kind) {
    case K_STR:
    case K_REQUIRED:
        if (value->type != J_STRING) {
            return DOUBT;
        }
        if (value->len == 0) { /* an escape writes a character: no escape either */
            if (entry->kind == K_REQUIRED) {
                return DOUBT;
            }
            buf->len = mark;
            return 0;
        }
        return put_string(buf, value, check);
    case K_UINT:
        if (value->type != J_INT || (value->negative && value->magnitude != 0)) {
            return DOUBT;
        }
        return put_magnitude(buf, value->magnitude, 0);
    case K_LEVEL: {
        if (value->type != J_INT || value->magnitude > 5 ||
            (value->negative && value->magnitude != 0)) {
            return DOUBT;
        }
        char digit = (char)('0' + value->magnitude);
        return put(buf, &digit, 1);
    }
    case K_LIST:
    case K_NAMES: {
        if (value->type != J_ARRAY || (entry->kind == K_NAMES && value->len != *count_seen)) {
            return DOUBT;
        }
        if (entry->kind == K_LIST) {
            *count_seen = value->len;
        }
        int status = put_items(entry, value, buf, check);
        if (status != 0 || check) {
            return status;
        }
        if (entry->suffix != NULL) {
            Py_ssize_t n;
            const char *suffix = PyUnicode_AsUTF8AndSize(entry->suffix, &n);
            return suffix == NULL ? -1 : put_escaped(buf, suffix, n);
        }
        if (entry->prefix == NULL || buf->len == start) {
            buf->len = mark; /* joined to "", or checked only: left out */
        }
        return 0;
    }
    case K_KEYWORDS:
        if (value->type != J_INT) {
            return DOUBT;
        }
        /* The low 64 bits, as PyLong_AsUnsignedLongLongMask gives them. */
        return put_keywords(buf, value->negative ? 0ULL - value->magnitude : value->magnitude);
    case K_TYPE:
        return value->type == J_STRING && !value->escaped && value->len == 7 &&
                       memcmp(value->at, "windows", 7) == 0
                   ? 0
                   : DOUBT;
    case K_TEXT:
    case K_TIME:
        return value->type == J_STRING ? 0 : DOUBT;
    }
    return DOUBT;
}

/* The value returned for an entry (a time as epoch ms when it can be), or NULL (see
 * make_object). */
static PyObject *
returned_value(Entry *entry, const Value *value, int *status)
{
    long long ms;
    if (entry->kind == K_TIME && !value->escaped &&
        utc_millis_text(value->at, value->len, &ms)) {
        return PyLong_FromLongLong(ms);
    }
    PyObject *last = entry->last;
    if (value->type == J_STRING && !value->escaped) {
        /* The same text as the last event's (host, provider, name: most events): the same
         * object. */
        if (last != NULL && PyUnicode_GET_LENGTH(last) == value->len &&
            memcmp(PyUnicode_DATA(last), value->at, (size_t)value->len) == 0) {
            return Py_NewRef(last);
        }
        PyObject *made = make_object(value, status);
        if (made != NULL && PyUnicode_IS_ASCII(made)) {
            entry->last = Py_NewRef(made);
            Py_XDECREF(last);
        }
        return made;
    }
    return make_object(value, status);
}

/* Whether the event's level (0-5, read) is one of `written` (bit n: level n); 1 when the level
 * is not read here (write_entry says why). */
static int
level_written(const Plan *plan, const Value *values, unsigned long written)
{
    if ((written & 0x3F) == 0x3F) { /* every level is written (Verbose, render_text) */
        return 1;
    }
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        if (plan->entries[i].kind == K_LEVEL) {
            const Value *v = &values[i];
            return v->type != J_INT || v->magnitude > 5 || (written >> v->magnitude) & 1;
        }
    }
    return 1;
}

/* What the text reader makes of a line (see _speedups.h): 0, DOUBT or -1. */
int
text_fields(PyObject *line, Plan *plan, Buffer *buf, PyObject **returned, unsigned long written)
{
    Value values[64];
    for (Py_ssize_t i = 0; i < plan->nret; i++) {
        returned[i] = NULL;
    }
    if (!PyUnicode_CheckExact(line) || plan->order == NULL || plan->count > 64) {
        return DOUBT;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(line, &n);
    if (text == NULL) { /* a lone surrogate: no UTF-8 */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return -1;
        }
        PyErr_Clear();
        return DOUBT;
    }
    if (read_object(plan, text, text + n, values) != 0) {
        return DOUBT;
    }
    int status = 0;
    int check = !level_written(plan, values, written);
    Py_ssize_t count_seen = -1;
    for (Py_ssize_t i = 0; i < plan->count && status == 0; i++) {
        Entry *entry = &plan->entries[i];
        status = write_entry(entry, &values[i], buf, &count_seen, check);
        if (status == 0 && entry->ret >= 0) {
            PyObject *value = returned_value(entry, &values[i], &status);
            if (value == NULL) {
                status = status == 0 ? -1 : status;
                break;
            }
            Py_XSETREF(returned[entry->ret], value);
        }
    }
    if (status != 0) {
        for (Py_ssize_t i = 0; i < plan->nret; i++) {
            Py_CLEAR(returned[i]);
        }
    }
    return status;
}

PyObject *
render_text(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "render_text(line, plan) takes two arguments");
        return NULL;
    }
    Plan *plan = (Plan *)PyCapsule_GetPointer(args[1], PLAN_NAME);
    if (plan == NULL) {
        return NULL;
    }
    PyObject *returned[64];
    Buffer buf;
    BUFFER_INIT(buf);
    int status = text_fields(args[0], plan, &buf, returned, ~0UL);
    PyObject *result = NULL;
    if (status == 0) {
        result = PyTuple_New(plan->nret + 1);
        PyObject *extensions = PyBytes_FromStringAndSize(buf.data, buf.len);
        if (result == NULL || extensions == NULL) {
            Py_CLEAR(result);
            Py_XDECREF(extensions);
            for (Py_ssize_t i = 0; i < plan->nret; i++) {
                Py_XDECREF(returned[i]);
            }
        }
        else {
            PyTuple_SET_ITEM(result, 0, extensions);
            for (Py_ssize_t i = 0; i < plan->nret; i++) {
                PyTuple_SET_ITEM(result, i + 1,
                                 returned[i] != NULL ? returned[i] : Py_NewRef(Py_None));
            }
        }
    }
    release(&buf);
    if (status == DOUBT) {
        Py_RETURN_NONE;
    }
    return result;
}
