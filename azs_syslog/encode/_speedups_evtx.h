/* What the two readers of .evtx records share: _speedups_evtx.c reads a record's XML as the
 * `evtx` parser writes it, _speedups_evtx_binary.c the record itself (its binary XML); both
 * end in write_event (_speedups_evtx_write.c), which writes our event's JSON text from the
 * texts they found. */
#ifndef AZS_SPEEDUPS_EVTX_H
#define AZS_SPEEDUPS_EVTX_H

#include "_speedups.h"

typedef struct { const char *at; Py_ssize_t len; } Span; /* at NULL: absent */

/* The texts of System's children and attributes that become fields. */
enum {
    PROVIDER, GUID, SOURCE, EVENT_ID, VERSION, LEVEL, TASK, OPCODE, KEYWORDS, TIME, RECORD_ID,
    ACTIVITY, RELATED, PROCESS, THREAD, CHANNEL, COMPUTER, USER, SYSTEM_COUNT
};

/* How a field is written; W_EVENT_DATA / W_USER_DATA: the data part (NO_DATA: none). */
enum { W_STR, W_NUM, W_GUID, W_TIME, W_MASK, W_EVENT_DATA, W_USER_DATA, NO_DATA };

#define LEN(s) ((Py_ssize_t)sizeof(s) - 1)

/* A control character (below 0x20) as orjson writes it in a JSON string, at o (at most six
 * bytes): \b \t \n \f \r, or \u00XX. Returns the end of what it wrote. */
static inline char *
put_control(char *o, unsigned c)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    switch (c) {
    case '\b': *o++ = 'b'; return o;
    case '\t': *o++ = 't'; return o;
    case '\n': *o++ = 'n'; return o;
    case '\f': *o++ = 'f'; return o;
    case '\r': *o++ = 'r'; return o;
    default:
        memcpy(o, "u00", 3);
        o[3] = hex[c >> 4];
        o[4] = hex[c & 0xF];
        return o + 5;
    }
}
#define PUT(buf, bad, s) put_bytes(buf, bad, s, LEN(s))

/* What each byte is to the XML reader's scans: refused anywhere (R; NUL too, which ends every
 * scan: the UTF-8 of a str ends with one), '"', '<', '>', LF, tab; E: escaped in JSON by the
 * writers (CR LF as LF). evtx_classes fills the table (once, before the first use). */
enum { R = 1, Q = 2, L = 4, G = 8, N = 16, T = 32, E = 64 };
#define CLASS azs_evtx_class
extern unsigned char CLASS[256];
void evtx_classes(void);

/* The writers (*bad: 1 when a text is not in a form written here, -1 out of memory). */
void put_bytes(Buffer *buf, int *bad, const char *s, Py_ssize_t n);
void put_str(Buffer *buf, int *bad, Span text);    /* a JSON string (CR LF, CR: LF) */
void put_number(Buffer *buf, int *bad, Span text); /* ASCII digits, as an integer */
void put_guid(Buffer *buf, int *bad, Span text);   /* event_xml.normalize_guid */
void put_time(Buffer *buf, int *bad, Span text);   /* event_xml.normalize_time */
void put_mask(Buffer *buf, int *bad, Span text);   /* event_xml.normalize_keywords */

/* Writes the data part (kind W_EVENT_DATA or W_USER_DATA) from what the reader found. */
typedef void (*DataWriter)(Buffer *buf, int *bad, int kind, const void *data);

/* The event: "type", then the fields in FIELD_ORDER (inputs/event_xml.py), each when its text
 * is not empty (provider_name always), the data part where it goes. */
void write_event(Buffer *buf, int *bad, const Span *f, int kind, DataWriter data,
                 const void *items);

#endif
