/* A record's element tree, walked with its values: what inputs/event_xml.py takes from the
 * Event XML the parser would write (see _speedups_evtx_binary.c). */
#include "_speedups_evtx_binary.h"

static void
close_text(Buffer *b, Off *text, Py_ssize_t start)
{
    text->at = start;
    text->len = b->len - start;
}

/* event_xml._text: a text of blanks with a line end is none (the layout of indented XML).
 * `json`: the text is escaped (T_JSON: a line end is "\\n", a tab "\\t"). */
static int
blank_rule(const Reader *r, Off *text, int json)
{
    const char *s = r->text.data + text->at;
    char first = text->len > 0 ? s[0] : 'x';
    if (json && first == '\\' && text->len > 1) { /* an escape first: LF, tab or another */
        first = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : 'x';
    }
    if ((first != ' ' && first != '\t' && first != '\n') ||
        memchr(s, json ? '\\' : '\n', (size_t)text->len) == NULL) {
        return 0; /* not blank, or without a line end */
    }
    int line = 0, other = 0, high = 0;
    for (Py_ssize_t i = 0; i < text->len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (json && c == '\\' && i + 1 < text->len) { /* an escape: LF, tab or another */
            c = (unsigned char)s[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : 'x';
        }
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
            TRY(put_utf16(&r->text, p + 2 * start, i - start, T_ELEMENT | T_JSON));
            text.len = r->text.len - text.at;
            TRY(blank_rule(r, &text, 1));
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
    TRY(blank_rule(r, &f->text, f->role == R_DATA_ITEM || f->role == R_USER_NODE));
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

/* Walk a fragment's ops with the values of its template instance, from the elements open
 * (r->stack) back to them. 0, DOUBT or -1. */
static int
walk(Reader *r, const Op *op, const Subst *values, Py_ssize_t nvalues)
{
    Frame *stack = r->stack;
    const int base = r->depth;
    int depth = base;
    int attribute = -1;     /* the attribute being read: its name (-1: none) */
    Py_ssize_t attr_at = 0; /* where its text starts */
    for (;; op++) {
        int code = op->op;
        if (attribute >= 0 && code != OP_TEXT && code != OP_VALUE && code != OP_OPTIONAL) {
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
        switch (code) {
        case OP_END_FRAGMENT:
            CHECK(depth == base);
            r->depth = base;
            return 0;
        case OP_OPEN: {
            CHECK(depth < MAX_DEPTH);
            int parent = depth > 0 ? stack[depth - 1].role : -1;
            int role = role_of(r, parent, op->name);
            CHECK(role >= 0);
            if (depth > 0) {
                CHECK(stack[depth - 1].text.at < 0 || stack[depth - 1].text.len == 0);
                stack[depth - 1].children = 1;
            }
            Frame *f = &stack[depth++];
            f->role = role;
            f->name = op->name;
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
        case OP_CLOSE_START:
            CHECK(depth > base);
            continue;
        case OP_END:
            CHECK(depth > base);
            TRY(end_element(r, &stack[--depth]));
            continue;
        case OP_ATTRIBUTE:
            CHECK(depth > base);
            attribute = op->name;
            attr_at = r->text.len;
            continue;
        default: { /* OP_TEXT, OP_VALUE, OP_OPTIONAL */
            CHECK(depth > base);
            Frame *f = &stack[depth - 1];
            const Subst *v = NULL;
            if (code != OP_TEXT) {
                CHECK(op->n < nvalues);
                v = &values[op->n];
                if (attribute < 0 && v->type == 0x81 && f->role == R_DATA_ITEM &&
                    f->text.at < 0 && f->array == NULL) {
                    f->array = v->at; /* an array of strings: read at the element's end */
                    f->array_size = v->size;
                    continue;
                }
                if (attribute < 0 && v->type == 0x21) { /* elements in a value: read in place */
                    CHECK(f->text.len == 0);
                    r->depth = depth;
                    TRY(fragment(r, v->at, v->at + v->size));
                    continue;
                }
            }
            if (attribute < 0) {
                CHECK(!f->children && f->array == NULL);
                if (f->text.at < 0) {
                    f->text.at = r->text.len;
                }
            }
            /* the data part's texts and names are written as they are: escaped now */
            int text = attribute < 0 ? T_ELEMENT | (f->role == R_DATA_ITEM ||
                                                    f->role == R_USER_NODE ? T_JSON : 0)
                                     : (f->role == R_DATA_ITEM && attribute == N_NAME ? T_JSON : 0);
            if (code == OP_TEXT) {
                TRY(put_utf16(&r->text, r->chunk + op->at, op->n, text));
            }
            else if (!(v->type == 0 && code == OP_OPTIONAL)) {
                TRY(put_value(&r->text, v->type, v->at, v->size, text));
            }
            if (attribute < 0) {
                f->text.len = r->text.len - f->text.at;
            }
            continue;
        }
        }
    }
}

/* A binary XML fragment [p, end) (its header, if any, then): a template instance (its
 * template walked with its values), or elements with their values in them; then the end of
 * the fragment. 0, DOUBT or -1. */
int
fragment(Reader *r, const unsigned char *p, const unsigned char *end)
{
    CHECK(r->nesting < 4 && end - p >= 5);
    const unsigned char *instance = p + (p[0] == 0x0f ? 4 : 0); /* after a header if any */
    if (*instance != 0x0c) { /* elements with their values: decoded for this once */
        Op *ops = PyMem_RawMalloc((size_t)(end - p) * sizeof(Op)); /* a token: a byte or more */
        if (ops == NULL) {
            return -1;
        }
        int status = compile(r, p, end, ops, end - p);
        status = status ? status : walk(r, ops, NULL, 0);
        PyMem_RawFree(ops);
        return status;
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
    const Op *ops = status ? NULL : template_ops(r, definition, tree, tree + tree_size);
    status = status ? status : ops == NULL ? DOUBT : 0;
    if (status == 0) {
        r->nesting++;
        status = walk(r, ops, values, count);
        r->nesting--;
    }
    if (values != stack_values) {
        PyMem_RawFree(values);
    }
    return status;
}
