/* A record's element tree, walked with its values: what inputs/event_xml.py takes from the
 * Event XML the parser would write (see _speedups_evtx_binary.c). */
#include "_speedups_evtx_binary.h"

static const char *const NAMES[N_COUNT] = {
    [N_EVENT] = "Event", [N_SYSTEM] = "System", [N_EVENT_DATA] = "EventData",
    [N_USER_DATA] = "UserData", [N_PROVIDER] = "Provider", [N_EVENT_ID] = "EventID",
    [N_VERSION] = "Version", [N_LEVEL] = "Level", [N_TASK] = "Task", [N_OPCODE] = "Opcode",
    [N_KEYWORDS] = "Keywords", [N_TIME_CREATED] = "TimeCreated",
    [N_EVENT_RECORD_ID] = "EventRecordID", [N_CORRELATION] = "Correlation",
    [N_EXECUTION] = "Execution", [N_CHANNEL] = "Channel", [N_COMPUTER] = "Computer",
    [N_SECURITY] = "Security", [N_NAME] = "Name", [N_GUID] = "Guid",
    [N_EVENT_SOURCE_NAME] = "EventSourceName", [N_SYSTEM_TIME] = "SystemTime",
    [N_ACTIVITY_ID] = "ActivityID", [N_RELATED_ACTIVITY_ID] = "RelatedActivityID",
    [N_PROCESS_ID] = "ProcessID", [N_THREAD_ID] = "ThreadID", [N_USER_ID] = "UserID",
};

/* System's children whose text is a field. */
static int
text_field(int element)
{
    switch (element) {
    case N_EVENT_ID: return EVENT_ID;
    case N_VERSION: return VERSION;
    case N_LEVEL: return LEVEL;
    case N_TASK: return TASK;
    case N_OPCODE: return OPCODE;
    case N_KEYWORDS: return KEYWORDS;
    case N_EVENT_RECORD_ID: return RECORD_ID;
    case N_CHANNEL: return CHANNEL;
    case N_COMPUTER: return COMPUTER;
    default: return -1;
    }
}

/* System's children whose attribute is a field (event_xml._SYSTEM_ATTRIBUTES). */
static int
attribute_field(int element, int attribute)
{
    switch (element * N_COUNT + attribute) {
    case N_PROVIDER * N_COUNT + N_NAME: return PROVIDER;
    case N_PROVIDER * N_COUNT + N_GUID: return GUID;
    case N_PROVIDER * N_COUNT + N_EVENT_SOURCE_NAME: return SOURCE;
    case N_TIME_CREATED * N_COUNT + N_SYSTEM_TIME: return TIME;
    case N_CORRELATION * N_COUNT + N_ACTIVITY_ID: return ACTIVITY;
    case N_CORRELATION * N_COUNT + N_RELATED_ACTIVITY_ID: return RELATED;
    case N_EXECUTION * N_COUNT + N_PROCESS_ID: return PROCESS;
    case N_EXECUTION * N_COUNT + N_THREAD_ID: return THREAD;
    case N_SECURITY * N_COUNT + N_USER_ID: return USER;
    default: return -1;
    }
}

/* -- names ------------------------------------------------------------------------------------ */

/* The kind of the name at a chunk offset (next offset, hash, count, UTF-16 units); -1 when it
 * is not inside the chunk. */
static int
name_kind(Reader *r, uint32_t offset)
{
    unsigned slot = (offset >> 1) % NAME_SLOTS;
    if (r->name_offsets[slot] == offset + 1) {
        return r->name_kinds[slot];
    }
    if (offset < CHUNK_HEADER || offset > CHUNK_SIZE - 8) {
        return -1;
    }
    const unsigned char *p = r->chunk + offset;
    unsigned count = u16(p + 6);
    if (offset + 8 + 2 * (uint32_t)count > CHUNK_SIZE) {
        return -1;
    }
    int kind = N_OTHER;
    for (unsigned i = 0; i < count; i++) {
        kind = u16(p + 8 + 2 * i) == ':' ? N_PREFIXED : kind;
    }
    for (int k = N_EVENT; k < N_COUNT && kind == N_OTHER; k++) {
        const char *name = NAMES[k];
        unsigned i = 0;
        while (i < count && name[i] != '\0' && u16(p + 8 + 2 * i) == (unsigned char)name[i]) {
            i++;
        }
        kind = i == count && name[i] == '\0' ? k : kind;
    }
    r->name_offsets[slot] = offset + 1;
    r->name_kinds[slot] = (unsigned char)kind;
    return kind;
}

/* A name reference at *p (an offset; the name itself follows when it is defined there): its
 * kind, *p after it; -1 when out of the chunk. */
static int
name_ref(Reader *r, const unsigned char **p, const unsigned char *end)
{
    if (end - *p < 4) {
        return -1;
    }
    uint32_t offset = u32(*p);
    *p += 4;
    if (offset == (uint32_t)(*p - r->chunk)) { /* defined here: skip it */
        if (end - *p < 8) {
            return -1;
        }
        Py_ssize_t size = 8 + 2 * (Py_ssize_t)u16(*p + 6) + 2;
        if (end - *p < size) {
            return -1;
        }
        *p += size;
    }
    return name_kind(r, offset);
}


static void
close_text(Buffer *b, Off *text, Py_ssize_t start)
{
    text->at = start;
    text->len = b->len - start;
}

/* event_xml._text: a text of blanks with a line end is none (the layout of indented XML). */
static int
blank_rule(const Reader *r, Off *text)
{
    const char *s = r->text.data + text->at;
    if (text->len == 0 || memchr(s, '\n', (size_t)text->len) == NULL) {
        return 0;
    }
    int line = 0, other = 0, high = 0;
    for (Py_ssize_t i = 0; i < text->len; i++) {
        unsigned char c = (unsigned char)s[i];
        line |= c == '\n';
        high |= c >= 0x80;
        other |= c < 0x80 && c != ' ' && c != '\t' && c != '\n';
    }
    if (line && !other) {
        CHECK(!high); /* whether Python's isspace() holds: not known here */
        text->len = 0;
    }
    return 0;
}

static int
add_item(Reader *r, Off name, Off value)
{
    CHECK(r->count < MAX_ITEMS);
    r->items[r->count].name = name;
    r->items[r->count].value = value;
    r->count++;
    return 0;
}

/* An EventData item whose text is an array of strings: the parser repeats the element for each
 * string (an empty one: an empty element); read here when each string ends with its NUL. */
static int
array_items(Reader *r, const Frame *f)
{
    const unsigned char *p = f->array;
    Py_ssize_t units = f->array_size / 2, start = 0, count = 0;
    CHECK(f->array_size % 2 == 0 && units > 0 && u16(p + 2 * (units - 1)) == 0);
    for (Py_ssize_t i = 0; i < units; i++) {
        if (u16(p + 2 * i) == 0) {
            Off text = {r->text.len, 0};
            TRY(put_utf16(&r->text, p + 2 * start, i - start, 1));
            text.len = r->text.len - text.at;
            TRY(blank_rule(r, &text));
            TRY(add_item(r, f->item, text));
            start = i + 1;
            count++;
        }
    }
    CHECK(count >= 1);
    return 0;
}

/* An element ends: what it holds goes where it belongs. */
static int
end_element(Reader *r, Frame *f)
{
    if (f->array != NULL) {
        return array_items(r, f);
    }
    if (f->text.at < 0) {
        f->text.at = r->text.len;
        f->text.len = 0;
    }
    TRY(blank_rule(r, &f->text));
    switch (f->role) {
    case R_SYSTEM_CHILD: {
        int field = text_field(f->name);
        if (field >= 0) {
            r->system[field] = f->text;
        }
        return 0;
    }
    case R_DATA_ITEM:
    case R_USER_NODE:
        if (f->role == R_USER_NODE && f->children) {
            CHECK(f->text.len == 0);
            return 0;
        }
        return add_item(r, f->item, f->text);
    default: /* Event, System, EventData, UserData: no text of their own */
        CHECK(f->text.len == 0);
        return 0;
    }
}

/* The role of an element named `name` in an element of role `parent` (-1: the root). */
static int
role_of(Reader *r, int parent, int name)
{
    switch (parent) {
    case -1:
        return name == N_EVENT ? R_EVENT : -1;
    case R_EVENT:
        if ((name == N_EVENT_DATA || name == N_USER_DATA) && r->kind == NO_DATA) {
            r->kind = name == N_EVENT_DATA ? W_EVENT_DATA : W_USER_DATA;
            return name == N_EVENT_DATA ? R_EVENT_DATA : R_USER_DATA;
        }
        return name == N_SYSTEM ? R_SYSTEM : -1;
    case R_SYSTEM:
        return name == N_PROVIDER || name == N_TIME_CREATED || name == N_CORRELATION ||
                       name == N_EXECUTION || name == N_SECURITY || text_field(name) >= 0
                   ? R_SYSTEM_CHILD
                   : -1;
    case R_EVENT_DATA:
        return R_DATA_ITEM;
    case R_USER_DATA:
    case R_USER_NODE:
        return R_USER_NODE;
    default: /* a System child or an EventData item holding an element */
        return -1;
    }
}

/* Walk an element tree [p, end) (a fragment: a template's, or elements in a value) with the
 * values of its template instance, from the elements open (r->stack) back to them. 0, DOUBT
 * or -1. */
static int
walk(Reader *r, const unsigned char *p, const unsigned char *end, const Subst *values,
     Py_ssize_t nvalues)
{
    Frame *stack = r->stack;
    const int base = r->depth;
    int depth = base;
    int attribute = -1;     /* the attribute being read: its name (-1: none) */
    Py_ssize_t attr_at = 0; /* where its text starts */
    if (end - p >= 4 && p[0] == 0x0f) { /* its header */
        p += 4;
    }
    while (p < end) {
        int token = *p & 0xBF; /* without the "more" bit 0x40 */
        if (attribute >= 0 && token != 0x05 && token != 0x0d && token != 0x0e) {
            Frame *f = &stack[depth - 1];
            Off text;
            close_text(&r->text, &text, attr_at);
            if (f->role == R_SYSTEM_CHILD) {
                int field = attribute_field(f->name, attribute);
                if (field >= 0) {
                    r->system[field] = text;
                }
            }
            else if (f->role == R_DATA_ITEM && attribute == N_NAME) {
                f->item = text;
            }
            attribute = -1;
        }
        switch (token) {
        case 0x00: /* end of the fragment */
            CHECK(depth == base);
            r->depth = base;
            return 0;
        case 0x01: { /* an element starts */
            int attributes = *p & 0x40;
            CHECK(end - p >= 7 && depth < MAX_DEPTH);
            uint32_t size = u32(p + 3); /* after the dependency identifier */
            CHECK(size < CHUNK_SIZE);
            p += 7;
            int name = name_ref(r, &p, end);
            CHECK(name >= 0 && name != N_PREFIXED);
            if (attributes) {
                CHECK(end - p >= 4);
                p += 4;
            }
            int parent = depth > 0 ? stack[depth - 1].role : -1;
            int role = role_of(r, parent, name);
            CHECK(role >= 0);
            if (depth > 0) {
                CHECK(stack[depth - 1].text.at < 0 || stack[depth - 1].text.len == 0);
                stack[depth - 1].children = 1;
            }
            Frame *f = &stack[depth++];
            f->role = role;
            f->name = name;
            f->text.at = -1;
            f->text.len = 0;
            f->item.at = -1;
            f->item.len = 0;
            f->children = 0;
            f->array = NULL;
            if (role == R_EVENT_DATA || role == R_USER_DATA) {
                r->count = 0;
            }
            continue;
        }
        case 0x02: /* the start tag ends: its content follows */
            CHECK(depth > base);
            p++;
            continue;
        case 0x03: /* the start tag ends the element */
        case 0x04: /* the end tag */
            CHECK(depth > base);
            p++;
            TRY(end_element(r, &stack[--depth]));
            continue;
        case 0x06: /* an attribute: its value follows */
            CHECK(depth > base);
            p++;
            attribute = name_ref(r, &p, end);
            CHECK(attribute >= 0);
            attr_at = r->text.len;
            continue;
        case 0x05:   /* a value in the template: a string */
        case 0x0d:   /* a substitution */
        case 0x0e: { /* an optional substitution (none when null) */
            CHECK(depth > base);
            Frame *f = &stack[depth - 1];
            if (token != 0x05 && attribute < 0) { /* elements in a value: read in place */
                CHECK(end - p >= 4);
                unsigned index = u16(p + 1);
                CHECK(index < nvalues);
                if (values[index].type == 0x81 && f->role == R_DATA_ITEM && f->text.at < 0 &&
                    f->array == NULL) { /* an array of strings: read at the element's end */
                    p += 4;
                    f->array = values[index].at;
                    f->array_size = values[index].size;
                    continue;
                }
                if (values[index].type == 0x21) {
                    p += 4;
                    CHECK(f->text.len == 0);
                    r->depth = depth;
                    TRY(fragment(r, values[index].at, values[index].at + values[index].size));
                    continue;
                }
            }
            if (attribute < 0) {
                CHECK(!f->children && f->array == NULL);
                if (f->text.at < 0) {
                    f->text.at = r->text.len;
                }
            }
            int status;
            if (token == 0x05) {
                CHECK(end - p >= 4 && p[1] == 0x01);
                Py_ssize_t units = u16(p + 2);
                CHECK(end - p - 4 >= 2 * units);
                status = put_utf16(&r->text, p + 4, units, attribute < 0);
                p += 4 + 2 * units;
            }
            else {
                CHECK(end - p >= 4);
                unsigned index = u16(p + 1);
                p += 4;
                CHECK(index < nvalues);
                const Subst *v = &values[index];
                status = v->type == 0 && token == 0x0e
                             ? 0
                             : put_value(&r->text, v->type, v->at, v->size, attribute < 0);
            }
            if (status != 0) {
                return status;
            }
            if (attribute < 0) {
                f->text.len = r->text.len - f->text.at;
            }
            continue;
        }
        default: /* CDATA, references, processing instructions, a template in the template */
            return DOUBT;
        }
    }
    return DOUBT; /* no end of the fragment */
}

/* A binary XML fragment [p, end) (its header, if any, then): a template instance (its template walked with its values),
 * or elements with their values in them; then the end of the fragment. 0, DOUBT or -1. */
int
fragment(Reader *r, const unsigned char *p, const unsigned char *end)
{
    CHECK(r->nesting < 4 && end - p >= 5);
    const unsigned char *instance = p + (p[0] == 0x0f ? 4 : 0); /* after a header if any */
    if (*instance != 0x0c) {
        return walk(r, p, end, NULL, 0);
    }
    /* the template instance: 1, its id, where its definition is */
    p = instance;
    CHECK(end - p >= 10);
    uint32_t definition = u32(p + 6);
    p += 10;
    CHECK(definition >= CHUNK_HEADER && definition <= CHUNK_SIZE - 24);
    const unsigned char *tree = r->chunk + definition + 24;
    uint32_t tree_size = u32(r->chunk + definition + 20);
    CHECK(tree_size <= (uint32_t)(CHUNK_SIZE - definition - 24));
    if (definition == (uint32_t)(p - r->chunk)) { /* defined here: skip it */
        CHECK(end - p >= 24 + (Py_ssize_t)tree_size);
        p += 24 + tree_size;
    }
    CHECK(end - p >= 4);
    uint32_t count = u32(p);
    p += 4;
    CHECK(count <= (uint32_t)((end - p) / 4));
    Subst stack_values[128];
    Subst *values = count <= 128 ? stack_values : PyMem_RawMalloc(count * sizeof(Subst));
    if (values == NULL) {
        return -1;
    }
    const unsigned char *at = p + 4 * count;
    int status = 0;
    for (uint32_t i = 0; i < count && status == 0; i++) {
        values[i].size = u16(p + 4 * i);
        values[i].type = p[4 * i + 2];
        values[i].at = at;
        status = values[i].size > end - at ? DOUBT : 0;
        at += status ? 0 : values[i].size;
    }
    /* then the end of the fragment */
    status = status ? status : (at < end && *at == 0x00 ? 0 : DOUBT);
    if (status == 0) {
        r->nesting++;
        status = walk(r, tree, tree + tree_size, values, count);
        r->nesting--;
    }
    if (values != stack_values) {
        PyMem_RawFree(values);
    }
    return status;
}
