/* Substitution values as the `evtx` parser writes them in a record's XML (see
 * _speedups_evtx_binary.c): strings (and ASCII "ANSI" ones), integers, booleans, binary, GUIDs,
 * FILETIMEs, SIDs and hex integers; any other type, or a value of a size not its type's, is
 * doubted. */
#include "_speedups_evtx_binary.h"

static inline int
put_char(Buffer *b, char c)
{
    if (b->len == b->cap && reserve(b, 1) < 0) {
        return -1;
    }
    b->data[b->len++] = c;
    return 0;
}

/* UTF-16LE units -> UTF-8 (trailing NULs dropped). In an element's text (text & T_ELEMENT),
 * controls but NUL are kept, CR LF and CR as LF (as an XML parser reads them; the others as the
 * XML path reads them, parked: event_xml.park_controls); in an attribute's, an XML parser would
 * turn some into spaces: not read here. With T_JSON, written escaped as put_str escapes a JSON
 * string's text. 0, DOUBT or -1 (no memory). */
int
put_utf16(Buffer *b, const unsigned char *p, Py_ssize_t units, int text)
{
    while (units > 0 && u16(p + 2 * (units - 1)) == 0) {
        units--;
    }
    if (reserve(b, 6 * units) < 0) { /* at most six bytes a unit (a control escaped) */
        return -1;
    }
    const int json = text & T_JSON;
    char *o = b->data + b->len;
    for (Py_ssize_t i = 0; i < units; i++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t w; /* four units of 0x20-0x7F at a time: their low bytes */
        while (i + 4 <= units && (memcpy(&w, p + 2 * i, 8), (w & 0xFF80FF80FF80FF80ULL) == 0 &&
                                  ((w + 0x0060006000600060ULL) & 0x0080008000800080ULL) ==
                                      0x0080008000800080ULL) &&
               !(json && (ZERO_UNITS(w ^ 0x0022002200220022ULL) |
                          ZERO_UNITS(w ^ 0x005C005C005C005CULL)))) { /* '"' and '\\' */
            o[0] = (char)w;
            o[1] = (char)(w >> 16);
            o[2] = (char)(w >> 32);
            o[3] = (char)(w >> 48);
            o += 4;
            i += 4;
        }
#endif
        if (i >= units) {
            break;
        }
        unsigned c = u16(p + 2 * i);
        if (c < 0x80) {
            if (c < 0x20) {
                if (!(text & T_ELEMENT) || c == 0) {
                    return DOUBT;
                }
                if (c == '\r') {
                    c = '\n';
                    i += i + 1 < units && u16(p + 2 * (i + 1)) == '\n';
                }
                if (json) {
                    o = put_control(o, c);
                    continue;
                }
            }
            else if (json && (c == '"' || c == '\\')) {
                *o++ = '\\';
            }
            *o++ = (char)c;
        }
        else if (c < 0x800) {
            *o++ = (char)(0xC0 | c >> 6);
            *o++ = (char)(0x80 | (c & 0x3F));
        }
        else if (c >= 0xD800 && c <= 0xDFFF) {
            unsigned low = i + 1 < units ? u16(p + 2 * (i + 1)) : 0;
            if (c > 0xDBFF || low < 0xDC00 || low > 0xDFFF) {
                return DOUBT;
            }
            i++;
            /* 4 bytes from 2 units: within the 3 per unit reserved */
            unsigned long cp = 0x10000 + (((unsigned long)c - 0xD800) << 10) + (low - 0xDC00);
            *o++ = (char)(0xF0 | cp >> 18);
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
        else {
            if ((c >= 0xF700 && c <= 0xF71F) || c >= 0xFFFE) {
                return DOUBT;
            }
            *o++ = (char)(0xE0 | c >> 12);
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    b->len = o - b->data;
    return 0;
}

static int
put_decimal(Buffer *b, uint64_t magnitude, int negative)
{
    return put_magnitude(b, (unsigned long long)magnitude, negative) < 0 ? -1 : 0;
}

static int
put_hex(Buffer *b, uint64_t value) /* "0x" and lower-case digits, no zeros before */
{
    char out[18];
    int n = 18;
    do {
        out[--n] = "0123456789abcdef"[value & 0xF];
        value >>= 4;
    } while (value != 0);
    out[--n] = 'x';
    out[--n] = '0';
    return put(b, out + n, 18 - n);
}

static const char UPPER_HEX[] = "0123456789ABCDEF";

static int
put_binary(Buffer *b, const unsigned char *p, Py_ssize_t n)
{
    if (reserve(b, 2 * n) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        b->data[b->len++] = UPPER_HEX[p[i] >> 4];
        b->data[b->len++] = UPPER_HEX[p[i] & 0xF];
    }
    return 0;
}

static int
put_guid_value(Buffer *b, const unsigned char *p)
{
    char out[36];
    int n = 0;
    uint32_t d1 = u32(p);
    unsigned d2 = u16(p + 4), d3 = u16(p + 6);
    for (int s = 28; s >= 0; s -= 4) {
        out[n++] = UPPER_HEX[(d1 >> s) & 0xF];
    }
    out[n++] = '-';
    for (int s = 12; s >= 0; s -= 4) {
        out[n++] = UPPER_HEX[(d2 >> s) & 0xF];
    }
    out[n++] = '-';
    for (int s = 12; s >= 0; s -= 4) {
        out[n++] = UPPER_HEX[(d3 >> s) & 0xF];
    }
    out[n++] = '-';
    for (int i = 8; i < 16; i++) {
        if (i == 10) {
            out[n++] = '-';
        }
        out[n++] = UPPER_HEX[p[i] >> 4];
        out[n++] = UPPER_HEX[p[i] & 0xF];
    }
    return put(b, out, n);
}

/* A FILETIME (100 ns since 1601) as "YYYY-MM-DDThh:mm:ss.ffffffZ"; DOUBT outside 1601-9999. */
static int
put_filetime(Buffer *b, uint64_t ticks)
{
    uint64_t seconds = ticks / 10000000u;
    unsigned micros = (unsigned)(ticks % 10000000u / 10u);
    long long days = (long long)(seconds / 86400u) - 134774; /* days since 1970-01-01 */
    unsigned rest = (unsigned)(seconds % 86400u);
    /* civil_from_days (H. Hinnant) */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long year = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    year += month <= 2;
    if (year < 1601 || year > 9999) {
        return DOUBT;
    }
    char out[27] = "0000-00-00T00:00:00.000000Z";
    unsigned fields[] = {(unsigned)year, month, day, rest / 3600, rest / 60 % 60, rest % 60, micros};
    static const struct { unsigned char at, width; } place[] = {
        {0, 4}, {5, 2}, {8, 2}, {11, 2}, {14, 2}, {17, 2}, {20, 6},
    };
    for (int k = 0; k < 7; k++) {
        unsigned v = fields[k];
        for (int i = place[k].at + place[k].width - 1; i >= place[k].at; i--, v /= 10) {
            out[i] = (char)('0' + v % 10);
        }
    }
    return put(b, out, 27);
}

/* A SID as "S-R-A-S1-S2..." (an authority under 2^32). */
static int
put_sid(Buffer *b, const unsigned char *p, Py_ssize_t size)
{
    if (size < 8 || size != 8 + 4 * (Py_ssize_t)p[1] || p[2] != 0 || p[3] != 0) {
        return DOUBT;
    }
    uint64_t authority = u32(p + 4);
    authority = (authority & 0xFF) << 24 | (authority & 0xFF00) << 8 | (authority >> 8 & 0xFF00) |
                authority >> 24; /* big-endian */
    if (put(b, "S-", 2) < 0 || put_decimal(b, p[0], 0) < 0 || put_char(b, '-') < 0 ||
        put_decimal(b, authority, 0) < 0) {
        return -1;
    }
    for (int i = 0; i < p[1]; i++) {
        if (put_char(b, '-') < 0 || put_decimal(b, u32(p + 8 + 4 * i), 0) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A substitution value (its type and bytes) as the parser writes it in the XML, into b.
 * 0, DOUBT or -1. */
int
put_value(Buffer *b, int type, const unsigned char *p, Py_ssize_t size, int text)
{
    static const signed char WIDTH[0x16] = {
        [0x03] = 1, [0x04] = 1, [0x05] = 2, [0x06] = 2, [0x07] = 4, [0x08] = 4, [0x09] = 8,
        [0x0a] = 8, [0x0d] = 4, [0x0f] = 16, [0x11] = 8, [0x14] = 4, [0x15] = 8,
    };
    if (type < 0x16 && WIDTH[type] != 0 && size != WIDTH[type]) {
        return DOUBT;
    }
    switch (type) {
    case 0x00: /* null */
        return size == 0 ? 0 : DOUBT;
    case 0x01: /* UTF-16 string */
        return size % 2 ? DOUBT : put_utf16(b, p, size / 2, text);
    case 0x02: /* an "ANSI" string: read here when it is ASCII, the same in any code page */
        while (size > 0 && p[size - 1] == 0) {
            size--;
        }
        for (Py_ssize_t i = 0; i < size; i++) {
            if (p[i] < 0x20 || p[i] > 0x7E) {
                return DOUBT;
            }
            if ((text & T_JSON) && (p[i] == '"' || p[i] == '\\') && put_char(b, '\\') < 0) {
                return -1;
            }
            if (put_char(b, (char)p[i]) < 0) {
                return -1;
            }
        }
        return 0;
    case 0x03: return put_decimal(b, (uint64_t)(p[0] & 0x80 ? 256 - p[0] : p[0]), p[0] >> 7);
    case 0x04: return put_decimal(b, p[0], 0);
    case 0x05: {
        int v = (int16_t)u16(p);
        return put_decimal(b, (uint64_t)(v < 0 ? -(long long)v : v), v < 0);
    }
    case 0x06: return put_decimal(b, u16(p), 0);
    case 0x07: {
        long long v = (int32_t)u32(p);
        return put_decimal(b, (uint64_t)(v < 0 ? -v : v), v < 0);
    }
    case 0x08: return put_decimal(b, u32(p), 0);
    case 0x09: {
        uint64_t v = u64(p);
        int negative = (v >> 63) != 0;
        return put_decimal(b, negative ? ~v + 1 : v, negative);
    }
    case 0x0a: return put_decimal(b, u64(p), 0);
    case 0x0d: { /* bool: 0 false, 1 true, another value its number, as the parser writes it
                  * (read here up to 2^31 - 1) */
        uint32_t v = u32(p);
        return v > 0x7FFFFFFF ? DOUBT : v > 1 ? put_decimal(b, v, 0)
                                              : put(b, v ? "true" : "false", v ? 4 : 5);
    }
    case 0x0e: return put_binary(b, p, size);
    case 0x0f: return put_guid_value(b, p);
    case 0x11: return put_filetime(b, u64(p));
    case 0x13: return put_sid(b, p, size);
    case 0x14: return put_hex(b, u32(p));
    case 0x15: return put_hex(b, u64(p));
    default: return DOUBT;
    }
}
