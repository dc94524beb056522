/* azs_syslog.encode._speedups, its second half: render_text, a Windows event of a known shape
 * rendered from its JSON text itself.
 *
 *   render_text(line, plan) -> (extensions: bytes, value of slot 0, ...) | None
 *
 * The same result as render(orjson.loads(line), plan), without the dict and the strings that
 * orjson would build for every field (two thirds of the fused path's time on a realistic
 * event): one pass reads the text, checks that it is JSON and that its fields are the plan's
 * shape in the plan's order, and notes where each value is; a second writes the pairs from
 * the text, in the order of the plan's entries. Only the values returned are made objects.
 *
 * It doubts (returns None, and the caller parses the line and calls render, which doubts in
 * its turn or not) at anything outside what the plans cover or what it is not sure of:
 * another shape or order of fields, a key holding an escape, a number that is not an integer
 * of 64 bits, a nested object, a lone surrogate (\ud800 written alone), a line that is not
 * one JSON object. What it accepts is JSON (RFC 8259): a raw control character in a string,
 * a leading zero, a bad escape or anything after the object are doubts, never accepted.
 * tests/test_render_text.py holds it to render() and to the reference path.
 */
#include "_speedups.h"

enum { J_STRING = 1, J_INT, J_ARRAY, J_TRUE, J_FALSE, J_NULL };

/* One value of the text: where it is, and what was learnt reading it. */
typedef struct {
    const char *at;               /* a string: its first byte after the quote; an array: after
                                   * its '[' */
    Py_ssize_t len;               /* a string: its bytes between the quotes; an array: its
                                   * items */
    const char *end;              /* an array: the byte after its ']' */
    unsigned long long magnitude; /* an integer */
    char type;
    char negative; /* an integer written with '-' */
    char escaped;  /* a string holding a backslash */
} Value;

/* What a byte is inside a JSON string: 0 itself; 1 the closing quote; 2 a backslash; 3 a control
 * character, which JSON does not allow raw. */
static const unsigned char IN_STRING[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    ['"'] = 1, ['\\'] = 2,
};

/* "YYYY-MM-DDThh:mm:ss.mmmZ" -> epoch ms (see _speedups.h). */
int
utc_millis_text(const char *t, Py_ssize_t n, long long *result)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (n != 24) {
        return 0;
    }
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i]) {
            return 0;
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
        return 0;
    }
    /* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
    long long y = year - (month <= 2);
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    *result = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis;
    return 1;
}

/* -- reading --------------------------------------------------------------------------------- */

static inline const char *
skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

static inline int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The code unit of the four hex digits at p (their presence checked by the caller); -1: not
 * hex digits. */
static inline long
hex4(const char *p)
{
    long unit = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(p[i]);
        if (digit < 0) {
            return -1;
        }
        unit = unit * 16 + digit;
    }
    return unit;
}

/* A string from just after its opening quote: returns the byte after its closing quote, NULL
 * for a doubt. */
static const char *
read_string(const char *p, const char *end, Value *value)
{
    const char *start = p;
    char escaped = 0;
    while (p < end) {
        /* Eight bytes at a time while none is a quote, a backslash or a control. */
        while (end - p >= 8) {
            unsigned long long w = word_at((const unsigned char *)p);
            unsigned long long quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
            if ((ZERO_BYTES(quote) | ZERO_BYTES(backslash) | BYTES_BELOW(w, 0x20)) != 0) {
                break;
            }
            p += 8;
        }
        if (p >= end) {
            break;
        }
        int what = IN_STRING[(unsigned char)*p];
        if (LIKELY(what == 0)) {
            p++;
            continue;
        }
        if (what == 1) {
            value->type = J_STRING;
            value->at = start;
            value->len = p - start;
            value->escaped = escaped;
            return p + 1;
        }
        if (what == 3 || end - p < 2) {
            return NULL;
        }
        escaped = 1;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u':
            if (end - p < 6 || hex4(p + 2) < 0) {
                return NULL;
            }
            p += 6;
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

/* An integer (JSON's grammar; a fraction or an exponent is a doubt, as is a magnitude beyond
 * what orjson reads as an int: 64 bits, signed below zero). */
static const char *
read_integer(const char *p, const char *end, Value *value)
{
    value->negative = 0;
    if (*p == '-') {
        value->negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return NULL;
    }
    unsigned long long magnitude = 0;
    if (*p == '0') {
        p++;
    }
    else {
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned digit = (unsigned)(*p - '0');
            if (magnitude > (~0ULL - digit) / 10) {
                return NULL;
            }
            magnitude = magnitude * 10 + digit;
            p++;
        }
    }
    if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E')) {
        return NULL;
    }
    if (value->negative && magnitude > (1ULL << 63)) {
        return NULL;
    }
    value->type = J_INT;
    value->magnitude = magnitude;
    return p;
}

static inline const char *
read_word(const char *p, const char *end, const char *word, Py_ssize_t n, Value *value, char type)
{
    if (end - p < n || memcmp(p, word, (size_t)n) != 0) {
        return NULL;
    }
    value->type = type;
    return p + n;
}

/* A string, an integer, true, false or null at p (p < end). */
static const char *
read_scalar(const char *p, const char *end, Value *value)
{
    switch (*p) {
    case '"':
        return read_string(p + 1, end, value);
    case 't':
        return read_word(p, end, "true", 4, value, J_TRUE);
    case 'f':
        return read_word(p, end, "false", 5, value, J_FALSE);
    case 'n':
        return read_word(p, end, "null", 4, value, J_NULL);
    default:
        return read_integer(p, end, value);
    }
}

/* The next item of an array whose text was checked by read_array: *p at the item; after it,
 * at the next one (or at the ']'). */
static inline void
next_item(const char **p, const char *end, Value *item)
{
    const char *after = read_scalar(*p, end, item);
    after = skip_space(after, end);
    if (*after == ',') {
        after = skip_space(after + 1, end);
    }
    *p = after;
}

/* An array of scalars from just after its '['. */
static const char *
read_array(const char *p, const char *end, Value *value)
{
    value->type = J_ARRAY;
    value->len = 0;
    p = skip_space(p, end);
    value->at = p;
    if (p < end && *p == ']') {
        value->end = p + 1;
        return p + 1;
    }
    while (p < end) {
        Value item;
        p = read_scalar(p, end, &item);
        if (p == NULL) {
            return NULL;
        }
        value->len++;
        p = skip_space(p, end);
        if (p >= end) {
            return NULL;
        }
        if (*p == ']') {
            value->end = p + 1;
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p = skip_space(p + 1, end);
    }
    return NULL;
}

/* The whole text: one object whose keys are the plan's fields in the plan's order, each value
 * noted in values[] at its entry. 0 or DOUBT. */
static int
read_object(const Plan *plan, const char *p, const char *end, Value *values)
{
    p = skip_space(p, end);
    if (p >= end || *p != '{') {
        return DOUBT;
    }
    p = skip_space(p + 1, end);
    for (Py_ssize_t position = 0; position < plan->size; position++) {
        const Entry *entry = &plan->entries[plan->order[position]];
        Py_ssize_t n = entry->key_len;
        /* "key": exactly the field's name (a key holding an escape is a doubt). */
        if (end - p < n + 2 || *p != '"' || p[n + 1] != '"' ||
            memcmp(p + 1, entry->key, (size_t)n) != 0) {
            return DOUBT;
        }
        p = skip_space(p + n + 2, end);
        if (p >= end || *p != ':') {
            return DOUBT;
        }
        p = skip_space(p + 1, end);
        if (p >= end) {
            return DOUBT;
        }
        Value *value = &values[plan->order[position]];
        p = *p == '[' ? read_array(p + 1, end, value) : read_scalar(p, end, value);
        if (p == NULL) {
            return DOUBT;
        }
        p = skip_space(p, end);
        if (p >= end || *p != (position + 1 == plan->size ? '}' : ',')) {
            return DOUBT;
        }
        p = skip_space(p + 1, end);
    }
    return p == end ? 0 : DOUBT;
}

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

/* A string value, escaped for CEF. */
static int
put_string(Buffer *buf, const Value *value)
{
    if (!value->escaped) {
        return put_escaped(buf, value->at, value->len);
    }
    Buffer text;
    BUFFER_INIT(text);
    int status = unescape(&text, value->at, value->len);
    if (status == 0) {
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

/* The items of a K_LIST or K_NAMES array, joined with "!!" (windows.join_list). */
static int
put_items(const Entry *entry, const Value *value, Buffer *buf)
{
    const char *p = value->at;
    for (Py_ssize_t i = 0; i < value->len; i++) {
        Value item;
        next_item(&p, value->end, &item);
        if (i > 0 && put(buf, "!!", 2) < 0) {
            return -1;
        }
        int status = 0;
        switch (item.type) {
        case J_STRING:
            status = put_string(buf, &item);
            break;
        case J_INT:
            status = entry->kind == K_NAMES ? DOUBT
                                            : put_magnitude(buf, item.magnitude, item.negative);
            break;
        case J_TRUE: /* as Windows writes a boolean in Event XML */
            status = entry->kind == K_NAMES ? DOUBT : put(buf, "true", 4);
            break;
        case J_FALSE:
            status = entry->kind == K_NAMES ? DOUBT : put(buf, "false", 5);
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

/* One entry, as render_entry does it for the object (see _speedups.c). */
static int
write_entry(const Entry *entry, const Value *value, Buffer *buf, Py_ssize_t *count_seen)
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
        return put_string(buf, value);
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
        int status = put_items(entry, value, buf);
        if (status != 0) {
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

/* What the text reader makes of a line (see _speedups.h): 0, DOUBT or -1. */
int
text_fields(PyObject *line, Plan *plan, Buffer *buf, PyObject **returned)
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
    Py_ssize_t count_seen = -1;
    for (Py_ssize_t i = 0; i < plan->count && status == 0; i++) {
        Entry *entry = &plan->entries[i];
        status = write_entry(entry, &values[i], buf, &count_seen);
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
    int status = text_fields(args[0], plan, &buf, returned);
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
