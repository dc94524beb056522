/* evtx_chunk: one 64 KiB chunk of an .evtx file -> its records as our events' JSON text, read
 * from the records' binary XML itself, without the `evtx` parser (inputs/evtx.py).
 *
 * A record is a binary XML fragment, nearly always a template instance: a template (an element
 * tree kept once in the chunk, its names in the chunk's string table) and the record's
 * substitution values, some of which may be fragments themselves (UserData, often). Each
 * record's tree is walked with its values (_speedups_evtx_tree.c) and mapped as
 * inputs/event_xml.py maps the Event XML the parser would write: the texts of System's
 * children and attributes, EventData's items (a Name and a text each; an array of strings
 * repeats its element, as the parser does), UserData's leaves; then written by write_event, as
 * evtx_json writes them (the same bytes, on every chunk of the test fixtures it reads:
 * tests/test_evtx_binary.py).
 *
 * The reading is strict. Anything it does not know for sure gives None for the whole chunk,
 * and the parser reads that chunk: a CDATA section, an entity or character reference, a
 * processing instruction; an element with both text and elements, or a prefixed name;
 * RenderingInfo, an unknown child of Event or System; a value of a type not written here
 * (floats, ANSI strings but ASCII ones, arrays but of strings in EventData, SYSTEMTIME,
 * size_t, handles), of a size not its type's, or a boolean of 2^31 or more; a string holding
 * NUL before its end, a lone surrogate, U+F700-U+F71F (where the XML path parks controls),
 * U+FFFE or U+FFFF, or in an attribute a control character; a number that is not what a System
 * field takes; any offset or size outside the chunk, a record whose sizes disagree. The caller
 * checks the checksums first: a damaged chunk is the parser's to read and report.
 *
 * The chunk is read without the GIL (a thread of its own reads ahead: inputs/evtx.py); the
 * records' objects are made after. */
#include "_speedups_evtx_binary.h"

/* A text of the data part, escaped already (T_JSON), as a JSON string. */
static void
put_quoted(Buffer *buf, int *bad, const char *s, Py_ssize_t n)
{
    if (*bad == 0 && reserve(buf, n + 2) < 0) {
        *bad = -1;
    }
    if (*bad == 0) {
        char *o = buf->data + buf->len;
        *o = '"';
        memcpy(o + 1, s, (size_t)n);
        o[n + 1] = '"';
        buf->len += n + 2;
    }
}

/* The data part from the items found (as _speedups_evtx.c's write_data from the XML). */
static void
write_items(Buffer *buf, int *bad, int how, const void *data)
{
    const Reader *r = data;
    Py_ssize_t start = buf->len, named = 0, filled = 0;
    if (how == W_EVENT_DATA) {
        PUT(buf, bad, ",\"event_data\":[");
    }
    else {
        PUT(buf, bad, ",\"user_data\":[");
    }
    for (Py_ssize_t i = 0; i < r->count; i++) {
        const Off *value = &r->items[i].value;
        named += r->items[i].name.len > 0;
        filled += value->len > 0;
        put_bytes(buf, bad, ",", i > 0);
        put_quoted(buf, bad, r->text.data + value->at, value->len);
    }
    PUT(buf, bad, "]");
    if (*bad || r->count == 0 || (how == W_USER_DATA && filled == 0)) {
        buf->len = *bad < 0 ? buf->len : start;
        return;
    }
    if (how == W_EVENT_DATA && named > 0) {
        PUT(buf, bad, ",\"event_data_names\":[");
        for (Py_ssize_t i = 0; i < r->count; i++) {
            const Off *name = &r->items[i].name;
            put_bytes(buf, bad, ",", i > 0);
            put_quoted(buf, bad, name->at < 0 ? "" : r->text.data + name->at,
                       name->at < 0 ? 0 : name->len);
        }
        PUT(buf, bad, "]");
    }
}

/* One record's binary XML [p, end) -> its JSON text appended to out. 0, DOUBT or -1. */
static int
record_json(Reader *r, const unsigned char *p, const unsigned char *end, Buffer *out)
{
    r->text.len = 0;
    r->kind = NO_DATA;
    r->count = 0;
    r->depth = 0;
    r->nesting = 0;
    for (int i = 0; i < SYSTEM_COUNT; i++) {
        r->system[i].at = -1;
    }
    TRY(fragment(r, p, end));
    CHECK(r->depth == 0);
    /* provider_name is always written: a Provider with a Name that is not empty */
    CHECK(r->system[PROVIDER].at >= 0 && r->system[PROVIDER].len > 0);
    Span f[SYSTEM_COUNT];
    for (int i = 0; i < SYSTEM_COUNT; i++) {
        f[i].at = r->system[i].at < 0 ? NULL : r->text.data + r->system[i].at;
        f[i].len = r->system[i].at < 0 ? 0 : r->system[i].len;
    }
    int bad = 0;
    write_event(out, &bad, f, r->kind, write_items, r);
    return bad < 0 ? -1 : bad ? DOUBT : 0;
}

/* The records of a chunk, their texts one after the other in out: 0, DOUBT or -1 (no memory).
 * Run without the GIL: nothing here touches a Python object. */
static int
chunk_records(Reader *r, const unsigned char *chunk, Buffer *out)
{
    CHECK(memcmp(chunk, "ElfChnk", 8) == 0);
    uint64_t last = u64(chunk + 0x20); /* the last record's number */
    uint32_t free_space = u32(chunk + 0x30);
    CHECK(free_space >= CHUNK_HEADER && free_space <= CHUNK_SIZE);
    r->records = 0;
    for (uint32_t offset = CHUNK_HEADER; offset < free_space;) {
        const unsigned char *p = chunk + offset;
        uint32_t size = free_space - offset >= 28 ? u32(p + 4) : 0;
        CHECK(size >= 28 && size <= free_space - offset && memcmp(p, "**\0\0", 4) == 0 &&
              u32(p + size - 4) == size && r->records < MAX_RECORDS);
        uint64_t id = u64(p + 8);
        TRY(record_json(r, p + 24, p + size - 4, out));
        r->ids[r->records] = id;
        r->ends[r->records++] = out->len;
        offset += size;
        if (id == last) {
            break;
        }
    }
    return 0;
}

/* (numbers, lines) of the records read. */
static PyObject *
records_lists(const Reader *r, const Buffer *out)
{
    PyObject *numbers = PyList_New(r->records), *lines = PyList_New(r->records);
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; numbers != NULL && lines != NULL && i < r->records; i++) {
        PyObject *number = PyLong_FromUnsignedLongLong(r->ids[i]);
        PyObject *line = PyUnicode_DecodeUTF8(out->data + start, r->ends[i] - start, NULL);
        start = r->ends[i];
        if (number == NULL || line == NULL) {
            Py_XDECREF(number);
            Py_XDECREF(line);
            Py_CLEAR(numbers);
            break;
        }
        PyList_SET_ITEM(numbers, i, number);
        PyList_SET_ITEM(lines, i, line);
    }
    PyObject *result = numbers && lines ? PyTuple_Pack(2, numbers, lines) : NULL;
    Py_XDECREF(numbers);
    Py_XDECREF(lines);
    return result;
}

PyObject *
evtx_chunk(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    Reader *r = NULL;
    if (view.len != CHUNK_SIZE) {
        PyErr_SetString(PyExc_ValueError, "evtx_chunk: a chunk is 65536 bytes");
    }
    else if ((r = PyMem_RawMalloc(sizeof(Reader))) == NULL) {
        PyErr_NoMemory();
    }
    else {
        evtx_classes();
        memset(r->name_offsets, 0, sizeof r->name_offsets);
        r->nops = 0;
        r->ntemplates = 0;
        r->chunk = view.buf;
        BUFFER_INIT(r->text);
        r->text.nogil = 1;
        Buffer out;
        BUFFER_INIT(out);
        out.nogil = 1;
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = chunk_records(r, view.buf, &out);
        Py_END_ALLOW_THREADS
        result = status == 0       ? records_lists(r, &out)
                 : status == DOUBT ? Py_NewRef(Py_None)
                                   : PyErr_NoMemory();
        release(&out);
        release(&r->text);
    }
    PyMem_RawFree(r);
    PyBuffer_Release(&view);
    return result;
}
