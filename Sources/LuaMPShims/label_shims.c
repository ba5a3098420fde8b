// Output labels: line-labelling stdio streams for a child's output (fopencookie is GNU-only).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "luamp_label.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>

typedef struct {
    int fd;
    char *prefix;
    size_t prefix_len;
    char *pending;          // the start of a line without its newline yet
    size_t pending_len, pending_cap;
} label_stream;

static label_stream *streams[2];
static FILE *files[2];
static int active;

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return; }
        p += w; n -= (size_t)w;
    }
}

static int reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *nb = realloc(*buf, c);
    if (!nb) return -1;
    *buf = nb; *cap = c;
    return 0;
}

/// Writes every complete line of pending+data, each prefixed, in one write(2); keeps the rest.
static ssize_t label_write(void *cookie, const char *data, size_t n) {
    label_stream *ls = cookie;
    char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        if (!nl) {
            if (reserve(&ls->pending, &ls->pending_cap, ls->pending_len + (n - i)) == 0) {
                memcpy(ls->pending + ls->pending_len, data + i, n - i);
                ls->pending_len += n - i;
            }
            break;
        }
        size_t len = (size_t)(nl - (data + i)) + 1;
        if (reserve(&out, &out_cap, out_len + ls->prefix_len + ls->pending_len + len) == 0) {
            memcpy(out + out_len, ls->prefix, ls->prefix_len); out_len += ls->prefix_len;
            memcpy(out + out_len, ls->pending, ls->pending_len); out_len += ls->pending_len;
            memcpy(out + out_len, data + i, len); out_len += len;
        }
        ls->pending_len = 0;
        i += len;
    }
    if (out_len) write_all(ls->fd, out, out_len);
    free(out);
    return (ssize_t)n;
}

static void write_pending(label_stream *ls) {
    if (!ls || ls->pending_len == 0) return;
    char *out = malloc(ls->prefix_len + ls->pending_len);
    if (out) {
        memcpy(out, ls->prefix, ls->prefix_len);
        memcpy(out + ls->prefix_len, ls->pending, ls->pending_len);
        write_all(ls->fd, out, ls->prefix_len + ls->pending_len);
        free(out);
    }
    ls->pending_len = 0;
}

static int label_close(void *cookie) { write_pending(cookie); return 0; }

/// The luaL_Stream of `io.NAME` (or of the registry's `_IO_output`) if it wraps `f`: set to `nf`.
static void patch_stream(lua_State *L, int t, const char *name, FILE *f, FILE *nf) {
    lua_pushstring(L, name);
    lua_rawget(L, t);
    luaL_Stream *p = luaL_testudata(L, -1, LUA_FILEHANDLE);
    if (p && p->f == f) p->f = nf;
    lua_pop(L, 1);
}

int luamp_label_install(lua_State *L, const char *prefix) {
    cookie_io_functions_t fns = { .read = NULL, .write = label_write, .seek = NULL, .close = label_close };
    FILE *old[2] = { stdout, stderr };
    FILE *made[2] = { NULL, NULL };
    label_stream *ls[2] = { NULL, NULL };
    for (int k = 0; k < 2; k++) {
        ls[k] = calloc(1, sizeof(label_stream));
        if (!ls[k]) goto fail;
        ls[k]->fd = k + 1;
        ls[k]->prefix_len = strlen(prefix);
        ls[k]->prefix = strdup(prefix);
        if (!ls[k]->prefix) goto fail;
        made[k] = fopencookie(ls[k], "w", fns);
        if (!made[k]) goto fail;
        // stdout keeps its usual buffering (lines on a terminal, blocks elsewhere); stderr lines.
        setvbuf(made[k], NULL, (k == 0 && !isatty(1)) ? _IOFBF : _IOLBF, BUFSIZ);
    }
    for (int k = 0; k < 2; k++) {
        if (streams[k]) streams[k]->pending_len = 0;     // inherited: the parent writes it
        streams[k] = ls[k];
        files[k] = made[k];
    }
    stdout = made[0];
    stderr = made[1];
    int top = lua_gettop(L);
    if (lua_checkstack(L, 4)) {
        lua_pushstring(L, LUA_LOADED_TABLE);
        if (lua_rawget(L, LUA_REGISTRYINDEX) == LUA_TTABLE) {
            lua_pushstring(L, "io");
            if (lua_rawget(L, -2) == LUA_TTABLE) {
                int io = lua_gettop(L);
                patch_stream(L, io, "stdout", old[0], made[0]);
                patch_stream(L, io, "stderr", old[1], made[1]);
            }
        }
        lua_settop(L, top);
        patch_stream(L, LUA_REGISTRYINDEX, "_IO_output", old[0], made[0]);
        patch_stream(L, LUA_REGISTRYINDEX, "_IO_output", old[1], made[1]);
    }
    lua_settop(L, top);
    active = 1;
    return 0;
fail:
    for (int k = 0; k < 2; k++) {
        if (made[k]) fclose(made[k]);
        else if (ls[k]) { free(ls[k]->prefix); free(ls[k]); }
    }
    return -1;
}

int luamp_label_active(void) { return active; }

void luamp_label_finish(void) {
    if (!active) return;
    for (int k = 0; k < 2; k++) {
        if (files[k]) fflush(files[k]);
        write_pending(streams[k]);
    }
}
