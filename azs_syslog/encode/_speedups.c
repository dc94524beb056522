/* azs_syslog.encode._speedups: the compiled half of the renderer's fused path (optional).
 *
 * For a Windows event of a known shape it does in one call what render.Renderer.render_line's
 * pure-Python fused path does in Python: check every field's type and value against the
 * shape's plan (encode/plan.py, from the rules of events/windows.py) and write the escaped
 * " Key=value" extension pairs, as UTF-8, reading the event's JSON text itself. Anything it is
 * not sure of returns None, and the caller takes the pure-Python fused path or the reference
 * path, which give the same bytes or explain the error (tests/test_render_fast.py and
 * tests/test_render_text.py hold the paths to each other).
 *
 *   compile_plan(size, nret, entries[, shape]) -> plan (a capsule)            (this file)
 *       size: the number of fields of the shape; nret: the number of values returned;
 *       entries: (field, kind, prefix, ret, suffix) in the order the pairs are written;
 *       prefix: b" Key=" (None: checked, not written); ret: the slot the value is returned in
 *       (-1: none); suffix: text written after a joined list (None: nothing); shape: the
 *       fields in the order of the JSON text (without it, no text is ever read by the plan).
 *   render_text(line, plan) -> (extensions: bytes, value of slot 0, ...) | None
 *       the fields of JSON text line (_speedups_text.c, with the reader of _speedups_json.c)
 *   compile_context(...), render_message(line, plan, context, accepted_ms) -> bytes | ...
 *       the whole message (_speedups_message.c)
 *
 * Escaping (cef.py, docs/cef-mapping.md): \ -> \\, = -> \=, CR -> \r, LF -> \n, NUL -> U+FFFD;
 * VT, FF, FS, GS, RS, NEL, U+2028, U+2029 -> \n; TAB -> space; other C0, DEL, C1 -> U+FFFD.
 * The output buffer and the escaping are in _speedups.h.
 */
#include "_speedups.h"


static void
plan_release(Plan *plan)
{
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        Py_XDECREF(plan->entries[i].field);
        Py_XDECREF(plan->entries[i].prefix);
        Py_XDECREF(plan->entries[i].suffix);
        Py_XDECREF(plan->entries[i].last);
    }
    PyMem_Free(plan->order);
    PyMem_Free(plan);
}

static void
plan_free(PyObject *capsule)
{
    Plan *plan = (Plan *)PyCapsule_GetPointer(capsule, PLAN_NAME);
    if (plan == NULL) {
        PyErr_Clear();
        return;
    }
    plan_release(plan);
}

/* plan->order from the shape (the fields in the order of the JSON text): each one's entry.
 * 0, and no order, when a field has no entry or two entries one field (the text path then
 * never applies); -1 on an error. */
static int
set_order(Plan *plan, PyObject *shape)
{
    if (!PyTuple_CheckExact(shape)) {
        PyErr_SetString(PyExc_TypeError, "compile_plan: the shape must be a tuple");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(shape);
    if (size != plan->size || size != plan->count) {
        return 0;
    }
    Py_ssize_t *order = PyMem_Calloc((size_t)(size ? size : 1), sizeof(Py_ssize_t));
    if (order == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *name = PyTuple_GET_ITEM(shape, i);
        order[i] = -1;
        for (Py_ssize_t j = 0; j < plan->count; j++) {
            int same = PyUnicode_Check(name) ? PyUnicode_Compare(name, plan->entries[j].field) : 1;
            if (same == -1 && PyErr_Occurred()) {
                PyMem_Free(order);
                return -1;
            }
            if (same == 0) {
                order[i] = j;
                break;
            }
        }
        for (Py_ssize_t k = 0; k < i && order[i] >= 0; k++) {
            if (order[k] == order[i]) {
                order[i] = -1;
            }
        }
        if (order[i] < 0) {
            PyMem_Free(order);
            return 0;
        }
    }
    plan->order = order;
    return 0;
}

static PyObject *
compile_plan(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t size, nret;
    PyObject *entries, *shape = NULL;
    if (!PyArg_ParseTuple(args, "nnO!|O:compile_plan", &size, &nret, &PyTuple_Type, &entries,
                          &shape)) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(entries);
    if (size < 0 || nret < 0 || nret > 64) {
        PyErr_SetString(PyExc_ValueError, "compile_plan: bad size or nret");
        return NULL;
    }
    Plan *plan = PyMem_Calloc(1, sizeof(Plan) + (size_t)count * sizeof(Entry));
    if (plan == NULL) {
        return PyErr_NoMemory();
    }
    plan->size = size;
    plan->nret = nret;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *field, *prefix, *suffix;
        int kind;
        Py_ssize_t ret;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(entries, i), "UiOnO:compile_plan entry", &field,
                              &kind, &prefix, &ret, &suffix)) {
            goto fail;
        }
        if (kind < 0 || kind >= K_COUNT || ret < -1 || ret >= nret ||
            (prefix != Py_None && !PyBytes_CheckExact(prefix)) ||
            (suffix != Py_None && !PyUnicode_CheckExact(suffix))) {
            PyErr_SetString(PyExc_ValueError, "compile_plan: bad entry");
            goto fail;
        }
        Entry *entry = &plan->entries[i];
        entry->key = PyUnicode_AsUTF8AndSize(field, &entry->key_len);
        if (entry->key == NULL) {
            goto fail;
        }
        Py_INCREF(field);
        entry->field = field;
        entry->prefix = prefix == Py_None ? NULL : Py_NewRef(prefix);
        entry->suffix = suffix == Py_None ? NULL : Py_NewRef(suffix);
        entry->kind = kind;
        entry->ret = ret;
        plan->count = i + 1;
    }
    if (shape != NULL && set_order(plan, shape) < 0) {
        goto fail;
    }
    PyObject *capsule = PyCapsule_New(plan, PLAN_NAME, plan_free);
    if (capsule != NULL) {
        return capsule;
    }
fail:
    plan_release(plan);
    return NULL;
}

static PyMethodDef methods[] = {
    {"compile_plan", compile_plan, METH_VARARGS,
     "compile_plan(size, nret, entries) -> plan: see the module's source."},
    {"render_text", (PyCFunction)(void (*)(void))render_text, METH_FASTCALL,
     "render_text(line, plan) -> (extensions, *values) | None: see _speedups_text.c."},
    {"compile_context", compile_context, METH_VARARGS,
     "compile_context(...) -> context: see _speedups_message.c."},
    {"render_message", (PyCFunction)(void (*)(void))render_message, METH_FASTCALL,
     "render_message(line, plan, context, accepted_ms) -> bytes | False | None: see "
     "_speedups_message.c."},
    {"render_messages", (PyCFunction)(void (*)(void))render_messages, METH_FASTCALL,
     "render_messages(lines, start, plan, context, accepted_ms, frame, out) -> "
     "(stop, filtered): see _speedups_message.c."},
    {"evtx_json", evtx_json, METH_O,
     "evtx_json(data) -> str | None: see _speedups_evtx.c."},
    {"evtx_chunk", evtx_chunk, METH_O,
     "evtx_chunk(chunk) -> tuple[list[int], list[str]] | None: see _speedups_evtx_binary.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "azs_syslog.encode._speedups",
    .m_doc = "The compiled half of the renderer's fused path (optional; see render.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}

