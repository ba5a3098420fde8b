-- luamp as a LuaRocks package: `require "mp"` for the stock lua5.4 (mp.so) and the `luamp`
-- command. Built by SwiftPM (a Swift 6 toolchain on PATH, Debian's liblua5.4-dev):
--   luarocks --lua-version 5.4 make                      (in a checkout; add --tree DIR or --local)
-- LUAMP_SWIFT_CONFIGURATION=debug builds faster, for tests (scripts/luarocks-example).
rockspec_format = "3.0"
package = "luamp"
version = "dev-1"
source = {
   url = "git+file://./",   -- `luarocks make` builds the checkout it runs in
}
description = {
   summary = "Python's multiprocessing for Lua 5.4: forked processes, pools, queues, locks, shared values",
   detailed = [[
      mp runs Lua functions in fork()ed worker processes that see every global, upvalue and
      closure, with Process, Pool, Queue, Pipe, Lock, Event, Condition, Barrier, Value and Array
      as in Python's multiprocessing. Installs mp.so (require "mp" from lua5.4) and the luamp
      command (a drop-in for lua with the REPL).
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   HIREDIS = { header = "hiredis/hiredis.h" },   -- Debian's libhiredis-dev: the cluster's Redis client
   OPENSSL = { header = "openssl/sha.h" },       -- Debian's libssl-dev: the cluster's SHA-256
}
build = {
   type = "command",
   -- LuaRocks exports its C compiler settings (CC=gcc, CFLAGS...); SwiftPM uses its own clang.
   build_command = [[
      unset CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS LD LIBFLAG
      c="${LUAMP_SWIFT_CONFIGURATION:-release}"
      swift build -c "$c" --product luamp && swift build -c "$c" --product mp
   ]],
   install_command = [[
      d="$(swift build -c "${LUAMP_SWIFT_CONFIGURATION:-release}" --show-bin-path)"
      mkdir -p "$(LIBDIR)" "$(BINDIR)" &&
      cp "$d/libmp.so" "$(LIBDIR)/mp.so" &&
      cp "$d/luamp" "$(BINDIR)/luamp"
   ]],
}
