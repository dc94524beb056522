/* azs_syslog.encode._speedups: what its two halves share (see _speedups.c).
 *
 * _speedups.c: the module and compile_plan;
 * _speedups_text.c: render_text (the event's JSON text itself, no objects built);
 * _speedups_message.c: render_message (the whole message, from the JSON text);
 * _speedups_evtx.c: evtx_json (an .evtx record's XML -> our event's JSON text; inputs/evtx.py);
 * _speedups_evtx_binary.c (with _compile, _tree, _values): evtx_chunk (a chunk of an .evtx file -> its
 * records' JSON texts, from their binary XML); _speedups_evtx_write.c: what both write.
 * The output helpers are static inline here: they are the inner loop of both.
 */
#ifndef AZS_SPEEDUPS_H
#define AZS_SPEEDUPS_H

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
    const char *key;     /* the UTF-8 of field (held by it) */
    Py_ssize_t key_len;
    PyObject *last;      /* render_text: the last ASCII str returned for this entry, given
                          * again while the text is the same (no new object, its hash kept) */
} Entry;

typedef struct {
    Py_ssize_t size;
    Py_ssize_t nret;
    Py_ssize_t count;
    /* The entry of each field of the shape, in the order of the event's JSON text (NULL when
     * the plan was made without that order: render_text then always doubts). */
    Py_ssize_t *order;
    Entry entries[];
} Plan;

#define DOUBT 1

/* -- an output buffer ------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    int nogil; /* filled without the GIL: no exception is set (the caller sets MemoryError) */
    char stack[4096];
} Buffer;

static inline int
reserve(Buffer *buf, Py_ssize_t extra)
{
    if (extra <= buf->cap - buf->len) {
        return 0;
    }
    if (extra > PY_SSIZE_T_MAX / 2 - buf->len) {
        if (!buf->nogil) {
            PyErr_NoMemory();
        }
        return -1;
    }
    Py_ssize_t cap = buf->cap * 2;
    if (cap < buf->len + extra) {
        cap = buf->len + extra;
    }
    char *data; /* the raw allocator: callable without the GIL */
    if (buf->data == buf->stack) {
        data = PyMem_RawMalloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, buf->data, (size_t)buf->len);
        }
    }
    else {
        data = PyMem_RawRealloc(buf->data, (size_t)cap);
    }
    if (data == NULL) {
        if (!buf->nogil) {
            PyErr_NoMemory();
        }
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static inline int
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

/* Eight bytes at a time (SWAR): a mask with the high bit of each byte of the word that is
 * zero / below n (n <= 128), exact for the lowest such byte; a false alarm above it only sends
 * the caller to its byte loop. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define ZERO_BYTES(w) (((w) - ONES) & ~(w) & HIGHS)
#define BYTES_BELOW(w, n) (((w) - ONES * (n)) & ~(w) & HIGHS)

static inline unsigned long long
word_at(const unsigned char *p)
{
    unsigned long long w;
    memcpy(&w, p, 8);
    return w;
}

/* Whether none of the eight bytes at p needs escaping in a value: no backslash, "=", control,
 * DEL, and no byte above 0x7F (a C1 control or U+2028/U+2029 may start there). */
static inline int
plain_word(const unsigned char *p)
{
    unsigned long long w = word_at(p);
    unsigned long long backslash = w ^ (ONES * '\\'), equals = w ^ (ONES * '='),
                       del = w ^ (ONES * 0x7F);
    return ((ZERO_BYTES(backslash) | ZERO_BYTES(equals) | ZERO_BYTES(del) |
             BYTES_BELOW(w, 0x20)) |
            (w & HIGHS)) == 0;
}

static inline int
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
        while (i + 8 <= n && plain_word(in + i)) {
            i += 8;
        }
        if (i >= n) {
            break;
        }
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

/* Decimal digits of a magnitude, '-' before when negative (and not zero). */
static inline int
put_magnitude(Buffer *buf, unsigned long long magnitude, int negative)
{
    char digits[24];
    char *end = digits + sizeof digits, *at = end;
    do {
        *--at = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    if (negative && !(end - at == 1 && *at == '0')) {
        *--at = '-';
    }
    return put(buf, at, end - at);
}

/* 0x%016llX, by hand. */
static inline int
put_keywords(Buffer *buf, unsigned long long mask)
{
    static const char hex[] = "0123456789ABCDEF";
    char digits[18] = {'0', 'x'};
    for (int i = 17; i >= 2; i--) {
        digits[i] = hex[mask & 0xF];
        mask >>= 4;
    }
    return put(buf, digits, 18);
}

/* "YYYY-MM-DDThh:mm:ss.mmmZ" (years 0001-9999, a real date, no leap second) -> 1 and *ms the
 * epoch milliseconds; 0 for any other text (the caller's parse_time reads it). */
static inline void
release(Buffer *buf)
{
    if (buf->data != buf->stack) {
        PyMem_RawFree(buf->data);
    }
}

#define BUFFER_INIT(name)                                                                          \
    name.data = name.stack;                                                                        \
    name.len = 0;                                                                                  \
    name.nogil = 0;                                                                                \
    name.cap = sizeof name.stack

int utc_millis_text(const char *t, Py_ssize_t n, long long *ms);

/* -- the JSON reader (_speedups_json.c) -------------------------------------------------------- */

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

/* The whole text: one object whose keys are the plan's fields in the plan's order, each value
 * noted in values[] at its entry. 0 or DOUBT. */
int read_object(const Plan *plan, const char *p, const char *end, Value *values);
/* The next item of an array read_object checked: *p at the item; after it, at the next one. */
void next_item(const char **p, const char *end, Value *item);
/* The code unit of four hex digits at p, -1 when they are not. */
long hex4(const char *p);

/* The text reader (_speedups_text.c): the extension pairs of the Windows event of JSON text
 * line into buf, and the values of the plan's return slots into returned[0..nret) (new
 * references; NULL where absent). 0, DOUBT (nothing returned) or -1 (an error set). An event
 * whose level is not in `written` (bit n: level n) is checked alike, with the same doubts, but
 * its string and array pairs are not written (buf is then not a message's). */
int text_fields(PyObject *line, Plan *plan, Buffer *buf, PyObject **returned,
                unsigned long written);

PyObject *render_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *compile_context(PyObject *module, PyObject *args);
PyObject *render_message(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *render_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* _speedups_evtx.c: the JSON text of an .evtx record's XML in the parser's usual layout. */
PyObject *evtx_json(PyObject *module, PyObject *data);
/* _speedups_evtx_binary.c: the JSON texts of the records of a chunk of an .evtx file. */
PyObject *evtx_chunk(PyObject *module, PyObject *chunk);

#endif
