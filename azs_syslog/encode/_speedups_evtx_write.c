/* Our event's JSON text from the texts of an .evtx record (its System's children and
 * attributes, its data part), as inputs/event_xml.py makes it: the two readers of records
 * (_speedups_evtx.c, the parser's XML; _speedups_evtx_tree.c, the binary XML) end here. */
#include "_speedups_evtx.h"

unsigned char CLASS[256]; /* filled by the first call (evtx_classes) */

static void
fill_classes(void)
{
    memset(CLASS, R, 0x20);
    CLASS['&'] = CLASS[0xEF] = R;
    CLASS['\n'] = N | E;
    CLASS['\r'] = R | E; /* refused but in a text of <Data> */
    CLASS['\t'] = T | E;
    CLASS['"'] = Q | E;
    CLASS['\\'] = E;
    CLASS['>'] = G;
    CLASS['<'] = L; /* the last: the table is filled */
}

void
evtx_classes(void)
{
    if (CLASS['<'] == 0) {
        fill_classes();
    }
}

/* -- writing (*bad: 1 when a value is not in a form read here, -1 out of memory) -------------- */

#define DOUBT_IF(cond) do { if (cond) { *bad = 1; return; } } while (0)

void
put_bytes(Buffer *buf, int *bad, const char *s, Py_ssize_t n)
{
    *bad = *bad == 0 && put(buf, s, n) < 0 ? -1 : *bad;
}


void
put_str(Buffer *buf, int *bad, Span text)
{
    const char *s = text.at;
    Py_ssize_t n = text.len;
    if (*bad != 0 || reserve(buf, 6 * n + 2) < 0) { /* each byte at most six, and the quotes */
        *bad = *bad ? *bad : -1;
        return;
    }
    char *o = buf->data + buf->len;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n;) {
        unsigned long long w; /* eight bytes without '"', '\\' or a control: copied as they are */
        if (n - i >= 8 && (memcpy(&w, s + i, 8), !(ZERO_BYTES(w ^ (ONES * '"')) |
                                                     ZERO_BYTES(w ^ (ONES * '\\')) |
                                                     BYTES_BELOW(w, 0x20)))) {
            memcpy(o, &w, 8);
            o += 8;
            i += 8;
            continue;
        }
        for (Py_ssize_t stop = n - i >= 8 ? i + 8 : n; i < stop; i++) {
            char c = s[i];
            if (CLASS[(unsigned char)c] & E) {
                *o++ = '\\';
                i += c == '\r' && i + 1 < n && s[i + 1] == '\n'; /* CR LF, CR: LF (XML) */
                c = c == '\t' ? 't' : c == '\n' || c == '\r' ? 'n' : c;
            }
            else if ((unsigned char)c < 0x20) { /* another control (from a record's binary XML,
                                                 * not its XML) */
                o = put_control(o, (unsigned char)c);
                continue;
            }
            *o++ = c;
        }
    }
    *o++ = '"';
    buf->len = o - buf->data;
}

/* An integer of ASCII digits, as int() and orjson write it; over 19 digits: not here. */
void
put_number(Buffer *buf, int *bad, Span s)
{
    const char *p = s.at;
    Py_ssize_t n = s.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        DOUBT_IF(p[i] < '0' || p[i] > '9');
    }
    for (; n > 1 && *p == '0'; n--, p++) {
    }
    DOUBT_IF(n > 19);
    put_bytes(buf, bad, p, n);
}

#define HEX_DIGIT(c)                                                                               \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define UPPER(c) ((c) >= 'a' && (c) <= 'z' ? (char)((c) - 'a' + 'A') : (c))

/* normalize_guid for a GUID of hex digits and '-', with or without its braces. */
void
put_guid(Buffer *buf, int *bad, Span s)
{
    const char *p = s.at;
    Py_ssize_t n = s.len;
    n -= n > 0 && p[n - 1] == '}';
    int brace = n > 0 && *p == '{';
    p += brace;
    n -= brace;
    char out[64];
    DOUBT_IF(n == 0 || n > (Py_ssize_t)sizeof out);
    for (Py_ssize_t i = 0; i < n; i++) {
        DOUBT_IF(!HEX_DIGIT(p[i]) && p[i] != '-');
        out[i] = UPPER(p[i]);
    }
    put_str(buf, bad, (Span){out, n});
}

/* normalize_keywords for "0x" and hex digits (up to 16 after leading zeros). */
void
put_mask(Buffer *buf, int *bad, Span s)
{
    const char *p = s.at + 2;
    Py_ssize_t n = s.len - 2;
    DOUBT_IF(n < 1 || s.at[0] != '0' || (s.at[1] != 'x' && s.at[1] != 'X'));
    for (Py_ssize_t i = 0; i < n; i++) {
        DOUBT_IF(!HEX_DIGIT(p[i]));
    }
    for (; n > 1 && *p == '0'; n--, p++) {
    }
    DOUBT_IF(n > 16);
    char out[18] = "0x0000000000000000";
    for (Py_ssize_t i = 0; i < n; i++) {
        out[18 - n + i] = UPPER(p[i]);
    }
    put_str(buf, bad, (Span){out, 18});
}

/* normalize_time for "YYYY-MM-DDThh:mm:ss[.f+]Z" (ASCII digits; 't' and 'z' as well). */
void
put_time(Buffer *buf, int *bad, Span s)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd";
    const char *p = s.at;
    Py_ssize_t n = s.len, i = 19;
    DOUBT_IF(n < 20);
    for (int k = 0; k < 19; k++) {
        DOUBT_IF(form[k] == 'd' ? p[k] < '0' || p[k] > '9'
                 : form[k] == 'T' ? p[k] != 'T' && p[k] != 't'
                                  : p[k] != form[k]);
    }
    char out[24];
    memcpy(out, p, 19);
    memcpy(out + 19, ".000Z", 5);
    if (p[i] == '.') {
        for (i++; i < n - 1 && p[i] >= '0' && p[i] <= '9'; i++) {
            out[i < 23 ? i : 23] = i < 23 ? p[i] : 'Z'; /* milliseconds: the first three */
        }
        DOUBT_IF(i == 20); /* "." and no digit */
    }
    DOUBT_IF(i != n - 1 || (p[i] != 'Z' && p[i] != 'z'));
    put_str(buf, bad, (Span){out, 24});
}

/* The fields in FIELD_ORDER: each written when its text is not empty (provider_name always). */
typedef void (*Writer)(Buffer *buf, int *bad, Span s);
static const Writer WRITERS[] = {put_str, put_number, put_guid, put_time, put_mask};
#define KEY(k) ",\"" k "\":", LEN(",\"" k "\":")
static const struct { int field, how; const char *key; Py_ssize_t key_len; } ORDER[] = {
    {TIME, W_TIME, KEY("time")}, {CHANNEL, W_STR, KEY("channel")},
    {COMPUTER, W_STR, KEY("computer")}, {ACTIVITY, W_GUID, KEY("correlation_activity_id")},
    {RELATED, W_GUID, KEY("correlation_related_activity_id")}, {0, W_EVENT_DATA, NULL, 0},
    {EVENT_ID, W_NUM, KEY("event_id")}, {RECORD_ID, W_NUM, KEY("event_record_id")},
    {PROCESS, W_NUM, KEY("execution_process_id")}, {THREAD, W_NUM, KEY("execution_thread_id")},
    {KEYWORDS, W_MASK, KEY("keywords")}, {LEVEL, W_NUM, KEY("level")},
    {OPCODE, W_NUM, KEY("opcode")}, {SOURCE, W_STR, KEY("provider_event_source_name")},
    {GUID, W_GUID, KEY("provider_guid")}, {PROVIDER, W_STR, KEY("provider_name")},
    {USER, W_STR, KEY("security_user_id")}, {TASK, W_NUM, KEY("task")},
    {0, W_USER_DATA, NULL, 0}, {VERSION, W_NUM, KEY("version")},
};

void
write_event(Buffer *buf, int *bad, const Span *f, int kind, DataWriter data, const void *items)
{
    PUT(buf, bad, "{\"type\":\"windows\"");
    for (size_t i = 0; i < sizeof ORDER / sizeof ORDER[0] && *bad == 0; i++) {
        int how = ORDER[i].how;
        Span s = f[ORDER[i].field];
        if (how == kind) { /* W_EVENT_DATA or W_USER_DATA */
            data(buf, bad, how, items);
        }
        else if (how < W_EVENT_DATA && (s.len > 0 || ORDER[i].field == PROVIDER)) {
            put_bytes(buf, bad, ORDER[i].key, ORDER[i].key_len);
            WRITERS[how](buf, bad, s);
        }
    }
    PUT(buf, bad, "}");
}
