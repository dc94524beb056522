/* A template's tokens decoded once per chunk into ops, the names mapped to what they are to
 * the event (see _speedups_evtx_binary.c; the ops are walked in _speedups_evtx_tree.c). */
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
int
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
int
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


/* Decode the tokens of an element tree [p, end) (a template's, or elements in a value) into
 * ops (room for `room`), to the end of the fragment. 0 or DOUBT. */
int
compile(Reader *r, const unsigned char *p, const unsigned char *end, Op *ops, Py_ssize_t room)
{
    if (end - p >= 4 && p[0] == 0x0f) { /* its header */
        p += 4;
    }
    for (Py_ssize_t n = 0; p < end && n < room; n++) {
        Op *op = &ops[n];
        int token = *p & 0xBF; /* without the "more" bit 0x40 */
        int name;
        switch (token) {
        case 0x00: /* end of the fragment */
            op->op = OP_END_FRAGMENT;
            return 0;
        case 0x01: { /* an element starts */
            int attributes = *p & 0x40;
            CHECK(end - p >= 7);
            /* its size, after a dependency identifier; a size past the chunk: none, as the
             * parser reads it (records forwarded by a collector, MSExchange_Management_wec) */
            int without = u32(p + 3) >= CHUNK_SIZE;
            CHECK(u32(p + (without ? 1 : 3)) < CHUNK_SIZE);
            p += without ? 5 : 7;
            name = name_ref(r, &p, end);
            CHECK(name >= 0 && name != N_PREFIXED);
            if (attributes) {
                CHECK(end - p >= 4);
                p += 4;
            }
            op->op = OP_OPEN;
            op->name = (unsigned char)name;
            continue;
        }
        case 0x02: /* the start tag ends: its content follows */
            op->op = OP_CLOSE_START;
            p++;
            continue;
        case 0x03: /* the start tag ends the element */
        case 0x04: /* the end tag */
            op->op = OP_END;
            p++;
            continue;
        case 0x06: /* an attribute: its value follows */
            p++;
            name = name_ref(r, &p, end);
            CHECK(name >= 0);
            op->op = OP_ATTRIBUTE;
            op->name = (unsigned char)name;
            continue;
        case 0x05: /* a value in the template: a string */
            CHECK(end - p >= 4 && p[1] == 0x01);
            op->op = OP_TEXT;
            op->n = (uint16_t)u16(p + 2);
            CHECK(end - p - 4 >= 2 * (Py_ssize_t)op->n);
            op->at = (uint32_t)(p + 4 - r->chunk);
            p += 4 + 2 * op->n;
            continue;
        case 0x0d: /* a substitution */
        case 0x0e: /* an optional substitution (none when null) */
            CHECK(end - p >= 4);
            op->op = token == 0x0d ? OP_VALUE : OP_OPTIONAL;
            op->n = (uint16_t)u16(p + 1);
            p += 4;
            continue;
        default: /* CDATA, references, processing instructions, a template in the template */
            return DOUBT;
        }
    }
    return DOUBT; /* no end of the fragment, or too many tokens */
}

/* The ops of the template defined at `definition` (its tree [p, end)), decoded at its first
 * use in the chunk; NULL (DOUBT) when they cannot be. */
const Op *
template_ops(Reader *r, uint32_t definition, const unsigned char *p, const unsigned char *end)
{
    for (int i = 0; i < r->ntemplates; i++) {
        if (r->templates[i].definition == definition) {
            return &r->ops[r->templates[i].first];
        }
    }
    if (r->ntemplates == MAX_TEMPLATES ||
        compile(r, p, end, &r->ops[r->nops], MAX_OPS - r->nops) != 0) {
        return NULL;
    }
    Template *t = &r->templates[r->ntemplates++];
    t->definition = definition;
    t->first = (uint32_t)r->nops;
    while (r->ops[r->nops++].op != OP_END_FRAGMENT) {
    }
    return &r->ops[t->first];
}
