// Lua file handles for the codec: reading the FILE* behind an io library handle and making new
// handles around received descriptors. Must be C: luaL_Stream and the io library's close protocol
// are C structs and C function pointers.
#include "luamp_shims.h"
#include <errno.h>
#include <unistd.h>

int luamp_file_descriptor(lua_State *L, int idx, long long *pos) {
    luaL_Stream *p = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);
    if (p == NULL) return -2;
    if (p->closef == NULL || p->f == NULL) return -1;
    FILE *f = p->f;
    fflush(f);   // written data reaches the file before the receiver writes its own
    *pos = ftell(f);   // the logical position (read-ahead excluded); -1 when not seekable
    return fileno(f);
}

/// The io library's close function for the handles made below (io_fclose is static in liolib.c).
static int luamp_file_close(lua_State *L) {
    luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    errno = 0;
    int ok = fclose(p->f) == 0;
    return luaL_fileresult(L, ok, NULL);
}

int luamp_push_file(lua_State *L, int fd, const char *mode) {
    FILE *f = fdopen(fd, mode);
    if (f == NULL) return 0;
    luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
    p->f = f;
    p->closef = luamp_file_close;
    luaL_setmetatable(L, LUA_FILEHANDLE);
    return 1;
}
