/* What the reader of .evtx records' binary XML shares between its files:
 * _speedups_evtx_binary.c: evtx_chunk, a chunk's records (the module's function);
 * _speedups_evtx_compile.c: a template's tokens decoded into ops, names mapped;
 * _speedups_evtx_tree.c: a record's element tree walked with its values;
 * _speedups_evtx_values.c: a substitution value as the parser writes it in the XML. */
#ifndef AZS_SPEEDUPS_EVTX_BINARY_H
#define AZS_SPEEDUPS_EVTX_BINARY_H

#include "_speedups_evtx.h"

#include <stdint.h>

#define CHUNK_SIZE 65536
#define CHUNK_HEADER 512
#define MAX_DEPTH 32
#define MAX_ITEMS 1024
#define NAME_SLOTS 256
#define MAX_RECORDS ((CHUNK_SIZE - CHUNK_HEADER) / 28) /* the smallest record: 28 bytes */

typedef struct { Py_ssize_t at, len; } Off; /* a text in the scratch buffer; at -1: absent */

/* What a name is to the mapping (element and attribute names alike). */
enum {
    N_OTHER, N_PREFIXED, N_EVENT, N_SYSTEM, N_EVENT_DATA, N_USER_DATA, N_PROVIDER, N_EVENT_ID,
    N_VERSION, N_LEVEL, N_TASK, N_OPCODE, N_KEYWORDS, N_TIME_CREATED, N_EVENT_RECORD_ID,
    N_CORRELATION, N_EXECUTION, N_CHANNEL, N_COMPUTER, N_SECURITY, N_NAME, N_GUID,
    N_EVENT_SOURCE_NAME, N_SYSTEM_TIME, N_ACTIVITY_ID, N_RELATED_ACTIVITY_ID, N_PROCESS_ID,
    N_THREAD_ID, N_USER_ID, N_COUNT
};
/* What an element is to the event. */
enum { R_EVENT, R_SYSTEM, R_SYSTEM_CHILD, R_EVENT_DATA, R_DATA_ITEM, R_USER_DATA, R_USER_NODE };

typedef struct {
    int role, name;
    Off text;     /* its text (at -1: none yet) */
    Off item;     /* an EventData item: its Name attribute */
    int children; /* it holds elements */
    const unsigned char *array; /* an EventData item: its text is this array of strings */
    Py_ssize_t array_size;
} Frame;

typedef struct { Off name, value; } Item;

/* A template's tokens, decoded once per chunk (_speedups_evtx_tree.c). */
enum { OP_END_FRAGMENT, OP_OPEN, OP_CLOSE_START, OP_END, OP_ATTRIBUTE, OP_TEXT, OP_VALUE,
       OP_OPTIONAL };
typedef struct {
    unsigned char op, name; /* OP_OPEN, OP_ATTRIBUTE: the kind of the name */
    uint16_t n;             /* OP_TEXT: its UTF-16 units; OP_VALUE, OP_OPTIONAL: the value */
    uint32_t at;            /* OP_TEXT: where its units are in the chunk */
} Op;
#define MAX_OPS 16384
#define MAX_TEMPLATES 128
typedef struct { uint32_t definition, first; } Template; /* its ops from ops[first] */

typedef struct {
    const unsigned char *chunk;
    Buffer text; /* the values' texts, UTF-8 */
    Off system[SYSTEM_COUNT];
    int kind; /* W_EVENT_DATA, W_USER_DATA or NO_DATA */
    Item items[MAX_ITEMS];
    Py_ssize_t count;
    uint32_t name_offsets[NAME_SLOTS]; /* + 1; 0: empty */
    unsigned char name_kinds[NAME_SLOTS];
    Frame stack[MAX_DEPTH]; /* the elements open, in all fragments */
    Py_ssize_t records;     /* the records read: their numbers, where their texts end */
    uint64_t ids[MAX_RECORDS];
    Py_ssize_t ends[MAX_RECORDS];
    int depth;
    int nesting; /* fragments in values being read */
    Op ops[MAX_OPS]; /* the chunk's templates, decoded */
    Py_ssize_t nops;
    Template templates[MAX_TEMPLATES];
    int ntemplates;
} Reader;

/* -- little-endian reads (bounds checked by the callers) ---------------------------------------- */

static inline unsigned
u16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static inline uint32_t
u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
u64(const unsigned char *p)
{
    return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32;
}

/* -- a record's values ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *at;
    Py_ssize_t size;
    int type;
} Subst;

#define CHECK(cond) do { if (!(cond)) { return DOUBT; } } while (0)
#define TRY(call) do { int status_ = (call); if (status_ != 0) { return status_; } } while (0)

/* Where a text goes: an element's (else an attribute's); escaped as in a JSON string (the
 * texts of the data part's items and names, written as they are: write_items). */
enum { T_ELEMENT = 1, T_JSON = 2 };
/* Sixteen-bit units that are zero in w: their high bit set (exact for the lowest). */
#define ZERO_UNITS(w) (((w) - 0x0001000100010001ULL) & ~(w) & 0x8000800080008000ULL)

/* A substitution value (its type and bytes) as the parser writes it in the XML, appended to b
 * (`text`: T_ELEMENT, T_JSON). 0, DOUBT or -1 (no memory). */
int put_value(Buffer *b, int type, const unsigned char *p, Py_ssize_t size, int text);
/* UTF-16LE units as put_value writes a string's. */
int put_utf16(Buffer *b, const unsigned char *p, Py_ssize_t units, int text);
/* _speedups_evtx_compile.c: the field of a System child's text, of a System child's attribute
 * (-1: none); an element tree's tokens decoded into ops (room for `room`), 0 or DOUBT; the
 * ops of the chunk's template defined at `definition` (its tree [p, end)), decoded at its
 * first use, NULL when they cannot be. */
int text_field(int element);
int attribute_field(int element, int attribute);
int compile(Reader *r, const unsigned char *p, const unsigned char *end, Op *ops, Py_ssize_t room);
const Op *template_ops(Reader *r, uint32_t definition, const unsigned char *p,
                       const unsigned char *end);
/* A binary XML fragment [p, end) walked into r (its System texts, its data part's items).
 * 0, DOUBT or -1. */
int fragment(Reader *r, const unsigned char *p, const unsigned char *end);

#endif
