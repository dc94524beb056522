/* azs_syslog.encode._speedups: render_message, the whole syslog message of a
 * Windows event of a known shape, from its JSON text.
 *
 *   compile_context(pri, severities, levels, rfc5424, limit, middle, default_host, minutes,
 *                   headers, task_names, hosts) -> context (a capsule)
 *       pri: 11 bytes, "<PRI>" (or "<PRI>1 ") of each CEF severity; severities: the CEF
 *       severity of each Windows level 0-5; levels: bit n set when level n is forwarded;
 *       limit: the maximum message size; middle: what comes between the host and the CEF
 *       header (" " in RFC 3164, " APP - windows - " in RFC 5424); default_host: the host of
 *       an event without one; minutes, headers, task_names: the renderer's caches (dicts)
 *       minute -> its timestamp but ":ss", (provider, event id, name, severity) -> CEF header,
 *       (provider, task, event id) -> the name of a task; hosts: the set of the host names
 *       checked.
 *   render_message(line, plan, context, accepted_ms) -> bytes | False | None
 *       The message, unframed (the renderer frames it: syslog.framer); False when the
 *       OutputSeverity filter drops the event; None for a doubt, or whenever a cache misses:
 *       the renderer's Python path then does the same work, fills the caches, or explains.
 *
 * What it writes is Renderer.render_line's fused path, step for step (render.py): the name is
 * task_name, else task_category, else the cached name of the task; the time the event's, else
 * accepted_ms; the host the event's when it was checked before, else the default; a message
 * longer than the limit is a doubt (the reference path shortens it).
 */
#include "_speedups.h"

#define CONTEXT_NAME "azs_syslog.encode._speedups.context"

/* The return slots of a plan (plan.NATIVE_RETURNED, in order). */
enum { R_LEVEL, R_TIME, R_HOST, R_TASK_NAME, R_PROVIDER, R_EVENT_ID, R_CATEGORY, R_TASK, R_COUNT };

typedef struct {
    PyObject *pri[11]; /* bytes */
    int severity[6];
    unsigned long levels;
    int rfc5424;
    Py_ssize_t limit;
    PyObject *middle;       /* bytes */
    PyObject *default_host; /* str */
    PyObject *minutes;      /* dict */
    PyObject *headers;      /* dict */
    PyObject *task_names;   /* dict */
    PyObject *hosts;        /* set */
} Context;

static void
context_release(Context *context)
{
    for (int i = 0; i < 11; i++) {
        Py_XDECREF(context->pri[i]);
    }
    Py_XDECREF(context->middle);
    Py_XDECREF(context->default_host);
    Py_XDECREF(context->minutes);
    Py_XDECREF(context->headers);
    Py_XDECREF(context->task_names);
    Py_XDECREF(context->hosts);
    PyMem_Free(context);
}

static void
context_free(PyObject *capsule)
{
    Context *context = (Context *)PyCapsule_GetPointer(capsule, CONTEXT_NAME);
    if (context == NULL) {
        PyErr_Clear();
        return;
    }
    context_release(context);
}

PyObject *
compile_context(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *pri, *severities, *middle, *default_host, *minutes, *headers, *task_names, *hosts;
    unsigned long levels;
    int rfc5424;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!O!kpnO!UO!O!O!O!:compile_context", &PyTuple_Type, &pri,
                          &PyTuple_Type, &severities, &levels, &rfc5424, &limit, &PyBytes_Type,
                          &middle, &default_host, &PyDict_Type, &minutes, &PyDict_Type, &headers,
                          &PyDict_Type, &task_names, &PySet_Type, &hosts)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(pri) != 11 || PyTuple_GET_SIZE(severities) != 6 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "compile_context: bad pri, severities or limit");
        return NULL;
    }
    Context *context = PyMem_Calloc(1, sizeof(Context));
    if (context == NULL) {
        return PyErr_NoMemory();
    }
    for (int i = 0; i < 11; i++) {
        PyObject *item = PyTuple_GET_ITEM(pri, i);
        if (!PyBytes_CheckExact(item)) {
            PyErr_SetString(PyExc_TypeError, "compile_context: pri holds bytes");
            context_release(context);
            return NULL;
        }
        context->pri[i] = Py_NewRef(item);
    }
    for (int i = 0; i < 6; i++) {
        long severity = PyLong_AsLong(PyTuple_GET_ITEM(severities, i));
        if (severity == -1 && PyErr_Occurred()) {
            context_release(context);
            return NULL;
        }
        if (severity < 0 || severity > 10) {
            PyErr_SetString(PyExc_ValueError, "compile_context: a severity is 0-10");
            context_release(context);
            return NULL;
        }
        context->severity[i] = (int)severity;
    }
    context->levels = levels;
    context->rfc5424 = rfc5424;
    context->limit = limit;
    context->middle = Py_NewRef(middle);
    context->default_host = Py_NewRef(default_host);
    context->minutes = Py_NewRef(minutes);
    context->headers = Py_NewRef(headers);
    context->task_names = Py_NewRef(task_names);
    context->hosts = Py_NewRef(hosts);
    PyObject *capsule = PyCapsule_New(context, CONTEXT_NAME, context_free);
    if (capsule == NULL) {
        context_release(context);
    }
    return capsule;
}

/* dict[key] (borrowed), NULL when missing or on an error (*status -1 then, else DOUBT). */
static PyObject *
lookup(PyObject *dict, PyObject *key, int *status)
{
    if (key == NULL) {
        *status = -1;
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    if (value == NULL) {
        *status = PyErr_Occurred() ? -1 : DOUBT;
    }
    return value;
}

/* The UTF-8 of a str, NULL and DOUBT for one without (a lone surrogate). */
static const char *
utf8_of(PyObject *text, Py_ssize_t *n, int *status)
{
    if (!PyUnicode_Check(text)) {
        *status = DOUBT;
        return NULL;
    }
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, n);
    if (utf8 == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            *status = DOUBT;
        }
        else {
            *status = -1;
        }
    }
    return utf8;
}

static inline long long
floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int
is_text(PyObject *value)
{
    return value != NULL && PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) > 0;
}

/* The message of an event whose fields the text reader returned; NULL with *status. */
static PyObject *
assemble(const Context *context, PyObject **fields, const Buffer *extensions,
         long long accepted_ms, int *status)
{
    /* The time: the event's (read as epoch ms), else when it was accepted. */
    long long time_ms = accepted_ms;
    if (fields[R_TIME] != NULL) {
        if (!PyLong_CheckExact(fields[R_TIME])) {
            *status = DOUBT; /* not "YYYY-MM-DDThh:mm:ss.mmmZ": parse_time reads it */
            return NULL;
        }
        time_ms = PyLong_AsLongLong(fields[R_TIME]);
        if (time_ms == -1 && PyErr_Occurred()) {
            *status = -1;
            return NULL;
        }
    }
    PyObject *host = fields[R_HOST] != NULL ? fields[R_HOST] : context->default_host;
    if (fields[R_HOST] != NULL) {
        int known = PySet_Contains(context->hosts, host);
        if (known != 1) {
            *status = known < 0 ? -1 : DOUBT; /* checked by the Python path */
            return NULL;
        }
    }
    /* A plan of the renderer always returns these (required fields; the level 0-5, checked by
     * the reader); a plan made otherwise is a doubt, not a crash. */
    if (fields[R_LEVEL] == NULL || !PyLong_CheckExact(fields[R_LEVEL]) ||
        fields[R_PROVIDER] == NULL || fields[R_EVENT_ID] == NULL) {
        *status = DOUBT;
        return NULL;
    }
    long level = PyLong_AsLong(fields[R_LEVEL]);
    if (level < 0 || level > 5) {
        *status = level == -1 && PyErr_Occurred() ? -1 : DOUBT;
        return NULL;
    }
    if (!(context->levels & (1UL << level))) {
        *status = 0;
        return Py_NewRef(Py_False);
    }
    int severity = context->severity[level];
    PyObject *name = is_text(fields[R_TASK_NAME]) ? fields[R_TASK_NAME]
                     : is_text(fields[R_CATEGORY]) ? fields[R_CATEGORY]
                                                   : NULL;
    if (name == NULL) {
        PyObject *task = fields[R_TASK] != NULL ? fields[R_TASK] : Py_None;
        name = lookup(context->task_names,
                      PyTuple_Pack(3, fields[R_PROVIDER], task, fields[R_EVENT_ID]), status);
        if (name == NULL) {
            return NULL;
        }
    }
    PyObject *severity_object = PyLong_FromLong(severity);
    if (severity_object == NULL) {
        *status = -1;
        return NULL;
    }
    PyObject *header = lookup(
        context->headers,
        PyTuple_Pack(4, fields[R_PROVIDER], fields[R_EVENT_ID], name, severity_object), status);
    Py_DECREF(severity_object);
    if (header == NULL) {
        return NULL;
    }
    long long seconds = floor_div(time_ms, 1000);
    long long minute = floor_div(seconds, 60);
    PyObject *minute_object = PyLong_FromLongLong(minute);
    PyObject *stamp = lookup(context->minutes, minute_object, status);
    if (stamp == NULL) {
        return NULL;
    }
    Py_ssize_t stamp_len, host_len, header_len;
    const char *stamp_text = utf8_of(stamp, &stamp_len, status);
    const char *host_text = stamp_text ? utf8_of(host, &host_len, status) : NULL;
    const char *header_text = host_text ? utf8_of(header, &header_len, status) : NULL;
    if (header_text == NULL) {
        return NULL;
    }
    /* "<PRI>" stamp ss [".mmmZ"] " " host middle header "rt=" time extensions */
    Buffer out;
    BUFFER_INIT(out);
    PyObject *pri = context->pri[severity];
    int second = (int)(seconds - minute * 60);
    int millis = (int)(time_ms - seconds * 1000);
    char digits[6] = {(char)('0' + second / 10), (char)('0' + second % 10), '.',
                      (char)('0' + millis / 100), (char)('0' + millis / 10 % 10),
                      (char)('0' + millis % 10)};
    int failed =
        put(&out, PyBytes_AS_STRING(pri), PyBytes_GET_SIZE(pri)) < 0 ||
        put(&out, stamp_text, stamp_len) < 0 || put(&out, digits, context->rfc5424 ? 6 : 2) < 0 ||
        (context->rfc5424 && put(&out, "Z", 1) < 0) || put(&out, " ", 1) < 0 ||
        put(&out, host_text, host_len) < 0 ||
        put(&out, PyBytes_AS_STRING(context->middle), PyBytes_GET_SIZE(context->middle)) < 0 ||
        put(&out, header_text, header_len) < 0 || put(&out, "rt=", 3) < 0 ||
        put_magnitude(&out, time_ms < 0 ? 0ULL - (unsigned long long)time_ms
                                        : (unsigned long long)time_ms,
                      time_ms < 0) < 0 ||
        put(&out, extensions->data, extensions->len) < 0;
    PyObject *message = NULL;
    if (failed) {
        *status = -1;
    }
    else if (out.len > context->limit) {
        *status = DOUBT; /* the reference path shortens it */
    }
    else {
        message = PyBytes_FromStringAndSize(out.data, out.len);
        *status = message == NULL ? -1 : 0;
    }
    release(&out);
    return message;
}

/* The message of a line: a new reference to its bytes, or to Py_False when its level is not
 * sent; NULL with *status DOUBT (the Python path takes the line) or -1 (an error set). */
static PyObject *
message_of(PyObject *line, Plan *plan, const Context *context, long long accepted_ms,
           int *status)
{
    PyObject *fields[R_COUNT];
    Buffer extensions;
    BUFFER_INIT(extensions);
    /* An event of a level not sent is only checked: its pairs would not be read (assemble) */
    *status = text_fields(line, plan, &extensions, fields, context->levels);
    PyObject *message = NULL;
    if (*status == 0) {
        message = assemble(context, fields, &extensions, accepted_ms, status);
        for (int i = 0; i < R_COUNT; i++) {
            Py_XDECREF(fields[i]);
        }
    }
    release(&extensions);
    return message;
}

/* The plan and context of a call (args[at], args[at + 1]) and its accepted_ms (args[at + 2]):
 * 0; 1 when the plan cannot give a message (render_message: None); -1 with an error set. */
static int
call_parts(PyObject *const *args, int at, Plan **plan, Context **context, long long *accepted_ms)
{
    *plan = (Plan *)PyCapsule_GetPointer(args[at], PLAN_NAME);
    *context = *plan == NULL ? NULL : (Context *)PyCapsule_GetPointer(args[at + 1], CONTEXT_NAME);
    if (*context == NULL) {
        return -1;
    }
    int overflow;
    *accepted_ms = PyLong_AsLongLongAndOverflow(args[at + 2], &overflow);
    if (*accepted_ms == -1 && PyErr_Occurred()) {
        return -1;
    }
    return overflow || (*plan)->nret != R_COUNT;
}

PyObject *
render_message(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "render_message(line, plan, context, accepted_ms) takes four arguments");
        return NULL;
    }
    Plan *plan;
    Context *context;
    long long accepted_ms;
    int parts = call_parts(args, 1, &plan, &context, &accepted_ms);
    if (parts != 0) {
        return parts < 0 ? NULL : Py_NewRef(Py_None);
    }
    int status;
    PyObject *message = message_of(args[0], plan, context, accepted_ms, &status);
    if (status == DOUBT) {
        Py_RETURN_NONE;
    }
    return message;
}

/* render_messages(lines, start, plan, context, accepted_ms, frame, out) -> (stop, filtered):
 * for each line of the list from `start`, appends to out what render_line gives for it when
 * render_message reads it: frame(message), or None for an event whose level is not sent
 * (counted in `filtered`). Stops at the end, or at the first line it does not take (not a str
 * beginning with '{', or one render_message doubts), whose index it returns: the caller's
 * render_line takes it (and may change the plan). On an error, out holds what came before. */
PyObject *
render_messages(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "render_messages(lines, start, plan, context, "
                                         "accepted_ms, frame, out): two lists, seven arguments");
        return NULL;
    }
    PyObject *lines = args[0], *frame = args[5], *out = args[6];
    Py_ssize_t index = PyLong_AsSsize_t(args[1]), filtered = 0;
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Plan *plan;
    Context *context;
    long long accepted_ms;
    int parts = call_parts(args, 2, &plan, &context, &accepted_ms);
    if (parts < 0) {
        return NULL;
    }
    for (index = index < 0 ? 0 : index; parts == 0 && index < PyList_GET_SIZE(lines); index++) {
        PyObject *line = PyList_GET_ITEM(lines, index);
        if (!PyUnicode_CheckExact(line) || PyUnicode_GET_LENGTH(line) == 0 ||
            PyUnicode_READ_CHAR(line, 0) != '{') {
            break;
        }
        Py_INCREF(line); /* held: a cache's Python code may run meanwhile */
        int status;
        PyObject *message = message_of(line, plan, context, accepted_ms, &status);
        Py_DECREF(line);
        if (message == NULL) {
            if (status == DOUBT) {
                break;
            }
            return NULL;
        }
        PyObject *item = message == Py_False ? Py_NewRef(Py_None)
                                             : PyObject_CallOneArg(frame, message);
        filtered += message == Py_False;
        Py_DECREF(message);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            return NULL;
        }
        Py_DECREF(item);
    }
    return Py_BuildValue("(nn)", index, filtered);
}
