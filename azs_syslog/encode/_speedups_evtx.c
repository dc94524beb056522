/* evtx_json: a record of the `evtx` parser (its Event XML) -> the JSON text of our event.
 *
 * For a record in the parser's usual layout (inputs/evtx.py: the usual System; EventData of
 * <Data> elements, or UserData) this writes exactly orjson.dumps(inputs.evtx.fast_event(data)):
 * the same fields in FIELD_ORDER, times, GUIDs, keyword masks and numbers normalised alike.
 * Anything else gives None, and the Python path reads the record: an entity ('&'), a control
 * but LF and tab (and CR in a <Data> text), a byte 0xEF (U+F000-U+FFFF, where the XML path
 * parks controls), '<' or '>' in a value, a time, GUID, keyword mask or number in another form
 * (or over 19 digits), another child of EventData, text beside UserData's elements, ...
 * (tests/test_evtx_c.py). Every byte is matched by the layout's literal text or scanned as a
 * value (CLASS); the JSON text is written as it is read (and taken back for None). */
#include "_speedups_evtx.h"

typedef struct { const char *p, *end; int bad; } Reader; /* bad: not the usual layout (None) */

static inline const char *
scan(const char *p, int stop)
{
    while (!(CLASS[(unsigned char)*p] & stop)) {
        p++;
    }
    return p;
}

static inline int
lit(Reader *r, const char *s, Py_ssize_t n)
{
    int ok = r->end - r->p >= n && memcmp(r->p, s, (size_t)n) == 0;
    r->p += ok ? n : 0;
    return ok;
}

#define LIT(r, s) lit(r, s, LEN(s))

/* An attribute (` Name="` given) when it is next: its value, without '<', '>', tab or LF. */
static Span
attr(Reader *r, const char *name, Py_ssize_t n)
{
    Span s = {NULL, 0};
    if (!lit(r, name, n)) {
        return s;
    }
    const char *q = scan(r->p, R | Q | L | G | N | T);
    r->bad |= *q != '"' || q >= r->end;
    s.at = r->p;
    s.len = q - r->p;
    r->p = q + (*q == '"');
    return s;
}

#define ATTR(r, s) attr(r, s, LEN(s))

/* `    <Name>TEXT</Name>\n` (open: `    <Name>`, close: `</Name>\n`), TEXT not empty, without
 * '>' or LF; or, when blank_ok, `\n    ` (the parser's empty element: absent). Numbers are
 * checked when written. */
static Span
element(Reader *r, const char *open, Py_ssize_t n, const char *close, Py_ssize_t m, int blank_ok)
{
    Span s = {NULL, 0};
    if (r->bad || !lit(r, open, n)) {
        return s;
    }
    if (!(blank_ok && LIT(r, "\n    "))) {
        s.at = r->p;
        r->p = scan(r->p, R | L | G | N);
        s.len = r->p - s.at;
        r->bad |= *r->p != '<' || s.len == 0;
    }
    r->bad |= !lit(r, close, m);
    return s;
}

#define ELEMENT(r, name, blank_ok)                                                                 \
    element(r, "    <" name ">", LEN("    <" name ">"), "</" name ">\n", LEN("</" name ">\n"),    \
            blank_ok)

static void
read_system(Reader *r, Span *f)
{
    r->bad = !LIT(r, "    <Provider");
    f[PROVIDER] = ATTR(r, " Name=\"");
    r->bad |= f[PROVIDER].at == NULL;
    f[GUID] = ATTR(r, " Guid=\"");
    f[SOURCE] = ATTR(r, " EventSourceName=\"");
    r->bad |= !LIT(r, ">\n    </Provider>\n    <EventID");
    ATTR(r, " Qualifiers=\"");
    f[EVENT_ID] = element(r, ">", 1, "</EventID>\n", LEN("</EventID>\n"), 1);
    f[VERSION] = ELEMENT(r, "Version", 1);
    f[LEVEL] = ELEMENT(r, "Level", 1);
    f[TASK] = ELEMENT(r, "Task", 1);
    f[OPCODE] = ELEMENT(r, "Opcode", 1);
    f[KEYWORDS] = ELEMENT(r, "Keywords", 0);
    if (!r->bad && LIT(r, "    <TimeCreated")) {
        f[TIME] = ATTR(r, " SystemTime=\"");
        r->bad |= f[TIME].at == NULL || !LIT(r, ">\n    </TimeCreated>\n");
    }
    f[RECORD_ID] = ELEMENT(r, "EventRecordID", 1);
    if (!r->bad && LIT(r, "    <Correlation")) {
        f[ACTIVITY] = ATTR(r, " ActivityID=\"");
        f[RELATED] = ATTR(r, " RelatedActivityID=\"");
        r->bad |= !LIT(r, ">\n    </Correlation>\n");
    }
    if (!r->bad && LIT(r, "    <Execution")) {
        f[PROCESS] = ATTR(r, " ProcessID=\"");
        f[THREAD] = ATTR(r, " ThreadID=\"");
        r->bad |= !LIT(r, ">\n    </Execution>\n");
    }
    f[CHANNEL] = ELEMENT(r, "Channel", 0);
    f[COMPUTER] = ELEMENT(r, "Computer", 0);
    if (!r->bad && LIT(r, "    <Security")) {
        f[USER] = ATTR(r, " UserID=\"");
        r->bad |= !LIT(r, ">\n    </Security>\n");
    }
    r->bad |= !LIT(r, "  </System>\n");
}

/* 1 when s is blanks (space, tab, LF, CR) only, 0 when it holds another ASCII character, -1
 * when not but for non-ASCII (Python's isspace would tell: not read here); *lines: LF or CR. */
static int
blank(Span s, int *lines)
{
    int ascii = 1;
    *lines = 0;
    for (Py_ssize_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.at[i];
        *lines |= c == '\n' || c == '\r';
        ascii &= c < 0x80;
        if (c < 0x80 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return 0;
        }
    }
    return ascii ? 1 : -1;
}

#define KEPT 64 /* the names of EventData kept while its texts are written (more: read again) */

/* The <Data> lines of EventData from r->p to r->end: their texts (or their names, when names)
 * written as the items of a JSON array into buf, their names kept (the first KEPT). *count: how
 * many; *named: how many with a name that is not empty. */
static void
event_data(Reader *r, Buffer *buf, int names, Span *kept, Py_ssize_t *count, Py_ssize_t *named)
{
    *count = *named = 0;
    while (!r->bad && LIT(r, "    <Data")) {
        Span name = ATTR(r, " Name=\"");
        r->bad |= !LIT(r, ">");
        Span value = {r->p, 0};
        while (!r->bad && (r->p = scan(r->p, R | L | G | N), *r->p == '\n' || *r->p == '\r')) {
            r->p++; /* a text of lines (event_xml._text: "" when blanks only) */
        }
        value.len = r->p - value.at;
        int lines, b = blank(value, &lines);
        r->bad |= *r->p != '<' || (lines && b < 0);
        value.len = lines && b ? 0 : value.len;
        r->bad |= !LIT(r, "</Data>\n");
        *named += name.len > 0;
        kept[*count < KEPT ? *count : KEPT] = name; /* kept[KEPT]: the others */
        put_bytes(buf, &r->bad, ",", *count > 0);
        *count += 1;
        put_str(buf, &r->bad, names ? name : value);
    }
}

/* UserData's elements from r->p to r->end: the texts of those without children, at any depth,
 * written as the items of a JSON array into buf. Between the tags, blanks only.
 * *count: how many; *filled: how many are not empty. */
static void
user_data(Reader *r, Buffer *buf, Py_ssize_t *count, Py_ssize_t *filled)
{
    int depth = 0;
    const char *opened = NULL; /* the text after the last tag, when it was a start tag */
    *count = *filled = 0;
    while (!r->bad) {
        Span between = {r->p, 0};
        r->p = scan(r->p, R | L | G);
        r->bad |= *r->p != '<';
        r->p = r->p > r->end ? r->end : r->p; /* the last blanks, before the end tag's */
        between.len = r->p - between.at;
        int closing = r->end - r->p >= 2 && r->p[1] == '/';
        int lines, blanks = blank(between, &lines) == 1;
        if (opened != NULL && closing) { /* a leaf: its text ("" when blank with a LF) */
            r->bad |= lines && !blanks;
            between.len = lines ? 0 : between.len;
            put_bytes(buf, &r->bad, ",", *count > 0);
            *count += 1;
            *filled += between.len > 0;
            put_str(buf, &r->bad, between);
        }
        r->bad |= !blanks && !(opened != NULL && closing);
        if (r->bad || r->p == r->end) {
            break;
        }
        const char *tag = r->p;
        r->p = scan(r->p + 1, R | L | G);
        r->bad |= *r->p != '>' || r->p >= r->end || r->p - tag < 2 || tag[1] == '!' ||
                  tag[1] == '?' || r->p[-1] == '/' || (closing && depth == 0);
        r->p += !r->bad;
        depth += closing ? -1 : 1;
        opened = closing ? NULL : r->p;
    }
    r->bad |= depth != 0;
}

static const char HEAD[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\">\n  <System>\n";
static const char DATA_END[] = "  </EventData>\n</Event>\n";
static const char USER_END[] = "  </UserData>\n</Event>\n";

/* Where the data part's items are (items: from the first to the part's end tag); its kind. */
static int
data_part(Reader *r, Reader *items)
{
    *items = *r;
    if (LIT(r, "</Event>\n")) {
        r->bad |= r->p != r->end;
        return NO_DATA;
    }
    int kind = LIT(r, "  <EventData>\n") ? W_EVENT_DATA
               : LIT(r, "  <UserData>\n") ? W_USER_DATA
                                           : NO_DATA;
    const char *end = kind == W_EVENT_DATA ? DATA_END : USER_END;
    Py_ssize_t end_len = kind == W_EVENT_DATA ? LEN(DATA_END) : LEN(USER_END);
    r->bad |= kind == NO_DATA || r->end - r->p < end_len ||
              memcmp(r->end - end_len, end, (size_t)end_len) != 0;
    items->p = r->p;
    items->end = r->end - end_len;
    return kind;
}

/* The data part's arrays, written as they are read (taken back when nothing is to be written). */
static void
write_data(Buffer *buf, int *bad, int how, const void *data)
{
    const Reader *items = data;
    Py_ssize_t count = 0, filled = 0, start = buf->len;
    Reader scan = *items;
    Span kept[KEPT + 1];
    if (how == W_EVENT_DATA) {
        PUT(buf, bad, ",\"event_data\":[");
        event_data(&scan, buf, 0, kept, &count, &filled);
    }
    else {
        PUT(buf, bad, ",\"user_data\":[");
        user_data(&scan, buf, &count, &filled);
        count = filled; /* user_data: when a text is not empty */
    }
    *bad = *bad ? *bad : scan.bad || scan.p != scan.end;
    PUT(buf, bad, "]");
    if (*bad || count == 0) {
        buf->len = start;
        return;
    }
    if (how == W_EVENT_DATA && filled > 0) { /* event_data_names when a name is not empty */
        PUT(buf, bad, ",\"event_data_names\":[");
        for (Py_ssize_t i = 0; i < count && count <= KEPT; i++) {
            put_bytes(buf, bad, ",", i > 0);
            put_str(buf, bad, kept[i]);
        }
        scan = *items;
        if (count > KEPT) {
            event_data(&scan, buf, 1, kept, &count, &filled);
        }
        *bad = *bad ? *bad : scan.bad;
        PUT(buf, bad, "]");
    }
}

PyObject *
evtx_json(PyObject *module, PyObject *data)
{
    (void)module;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(data, &n);
    if (s == NULL) { /* not a str; or a lone surrogate: the Python path says what it becomes */
        if (!PyUnicode_Check(data)) {
            return NULL;
        }
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    evtx_classes();
    Reader r = {s, s + n, 0};
    Span f[SYSTEM_COUNT] = {{NULL, 0}};
    Reader items;
    if (!LIT(&r, HEAD)) {
        Py_RETURN_NONE;
    }
    read_system(&r, f);
    int kind = r.bad ? NO_DATA : data_part(&r, &items);
    if (r.bad) {
        Py_RETURN_NONE;
    }
    Buffer buf;
    BUFFER_INIT(buf);
    write_event(&buf, &r.bad, f, kind, write_data, &items);
    PyObject *result = r.bad == 0        ? PyUnicode_DecodeUTF8(buf.data, buf.len, NULL)
                       : PyErr_Occurred() ? NULL
                                          : Py_NewRef(Py_None);
    release(&buf);
    return result;
}
