/* azs_syslog.encode._speedups: the JSON reader of render_text (_speedups_text.c).
 *
 * It reads one JSON object whose keys are a plan's fields in the plan's order and notes where
 * each value is (a Value), checking the text against JSON's grammar (RFC 8259) on the way: a
 * raw control character in a string, a leading zero, a bad escape, anything after the object
 * are doubts. Numbers are integers of 64 bits (signed below zero) or doubts; values are
 * strings, integers, true, false, null, or arrays of those.
 */
#include "_speedups.h"

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
long
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
void
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
int
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
