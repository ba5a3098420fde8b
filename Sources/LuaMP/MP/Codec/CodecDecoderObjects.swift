// The decoder's paths for values that are not copies: references by name, rebuilt userdata, open files.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension Decoder {
    /// Fails when this decode refuses code (`mp.loads(s, {functions = false})`).
    @inline(__always)
    func refuseCode(_ what: String, _ at: Int) throws(MPError) {
        guard allowCode else {
            throw MPError("DecodeError", "refused \(what) at byte \(at) (mp.loads with functions = false)")
        }
    }

    /// A reference (`CodecFormat.Tag.reference`): checks its MAC, then resolves it only through
    /// package.loaded / require or the mp.register table.
    mutating func reference(shared: Bool, at: Int) throws(MPError) {
        let start = r.pos
        let source = try r.u8()
        let type = try r.u8()
        let name = try r.bytes(r.int(UInt16.self))
        let path = try r.bytes(r.int(UInt16.self))
        let signed = UnsafeRawBufferPointer(start: r.base + start, count: r.pos - start)
        guard mac(signed) == (try r.int(UInt64.self)) else {
            throw MPError("DecodeError", "reference from an unverified source (references resolve only within this luamp process tree)")
        }
        try ReferenceIndex.resolve(L, source: source, type: type, name: name, path: path)
        if shared { remember(at) }
    }

    /// A userdata rebuilt by calling its constructor with its arguments (`__mp_reduce` on the sender).
    mutating func reduced(shared: Bool, at: Int, depth: Int) throws(MPError) {
        let nargs = Int32(try r.u8())
        try check(depth, at)
        // Only a constructor with a proof of origin may be called: a Lua function (its bytecode
        // MAC), a reference (its MAC), or a ref to an earlier one of those.
        guard r.remaining > 0 else { throw r.failure("truncated input") }
        let ctor = r.base.load(fromByteOffset: r.pos, as: UInt8.self)
        switch ctor {
        case CodecFormat.Tag.function, CodecFormat.Tag.sharedFunction, CodecFormat.Tag.reference,
             CodecFormat.Tag.sharedReference, CodecFormat.Tag.ref:
            break
        default:
            throw r.failure("a userdata's constructor must be a Lua function or a reference", at: r.pos)
        }
        let fAt = r.pos
        try value(depth: depth + 1)
        guard lua_type(L, -1) == LUA_TFUNCTION else { throw r.failure("a userdata's constructor is not a function", at: fAt) }
        guard lua_checkstack(L, nargs + CodecFormat.stackNeeded) != 0 else { throw MPError("DecodeError", "Lua stack overflow") }
        var i: Int32 = 0
        while i < nargs { try value(depth: depth + 1); i += 1 }
        let status = luamp_pcall(L, nargs, 1, 0)
        if status != LUA_OK {
            let why = LuaStack(L).describe(-1)
            lua_settop(L, -2)
            throw MPError("DecodeError", "cannot rebuild a userdata: its constructor failed: \(why)")
        }
        if shared { remember(at) }
    }

    /// An open file: obtains the descriptor and pushes a new io library handle.
    mutating func file(at: Int) throws(MPError) {
        let b = try r.bytes(r.u8())
        let m = try r.int(UInt64.self)
        guard remoteKey == nil, mac(b) == m else {
            throw MPError("DecodeError", "file from an unverified source (files cross only within this luamp process tree)")
        }
        guard b.count == DescriptorName.size + 16,
              let name = DescriptorName(bytes: UnsafeRawBufferPointer(rebasing: b[..<DescriptorName.size])) else {
            throw r.failure("bad file record", at: at)
        }
        let position = Int64(littleEndian: b.loadUnaligned(fromByteOffset: DescriptorName.size, as: Int64.self))
        let token = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: DescriptorName.size + 8, as: UInt64.self))
        var fd: Int32 = -1
        // First the descriptor the sender posted (SCM_RIGHTS); a message decoded a second time
        // (a pool task re-run after a worker died, mp.loads twice) falls back to Descriptors.
        if token != 0, let got = try? PipeMailbox.take(token) {
            for extra in got.dropFirst() { close(extra) }
            if let first = got.first {
                if let n = DescriptorName(fd: first), n.dev == name.dev, n.ino == name.ino { fd = first } else { close(first) }
            }
        }
        if fd < 0 {
            do { fd = try Descriptors.obtain(name) } catch {
                throw MPError("DecodeError", "cannot receive a file: \(error.description)")
            }
        }
        // A regular file gets its own open file description at the sender's position (each side
        // then reads and writes on its own); pipes, sockets and terminals share the sender's.
        var st = stat()
        if position >= 0, fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG {
            let own = open("/proc/self/fd/\(fd)", (name.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC)
            if own >= 0 {
                close(fd)
                fd = own
                lseek(fd, off_t(position), SEEK_SET)
            }
        }
        guard luamp_push_file(L, fd, name.mode) != 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw MPError("DecodeError", "cannot receive a file: \(why)")
        }
    }
}

extension ReferenceIndex {
    /// Pushes the value a reference names, checking it has the type the sender saw.
    /// Stack: [-0, +1] on success, [-0, +0] when it throws.
    static func resolve(_ L: OpaquePointer, source: UInt8, type: UInt8, name nameBytes: UnsafeRawBufferPointer,
                        path pathBytes: UnsafeRawBufferPointer) throws(MPError) {
        let s = LuaStack(L)
        let top = lua_gettop(L)
        func text(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
        func fail(_ why: String) -> MPError {
            lua_settop(L, top)
            let name = text(nameBytes), path = text(pathBytes)
            let display = source == sourceRegistered ? "registered value '\(name)'" : (path.isEmpty ? "module '\(name)'" : "\(name).\(path)")
            return MPError("DecodeError", "cannot resolve \(display): \(why)")
        }
        func pushName() { _ = lua_pushlstring(L, nameBytes.baseAddress?.assumingMemoryBound(to: CChar.self), nameBytes.count) }
        switch source {
        case sourceRegistered:
            _ = s.rawGet(s.registryIndex(), field: registeredKey)
            pushName()
            guard lua_type(L, -2) == LUA_TTABLE, lua_rawget(L, -2) != LUA_TNIL else {
                throw fail("nothing is registered under that name in this process (call mp.register at load time, before workers start)")
            }
            luamp_remove(L, -2)
        case sourceModule:
            _ = s.rawGet(s.registryIndex(), field: LUA_LOADED_TABLE)
            pushName()
            if lua_type(L, -2) != LUA_TTABLE || lua_rawget(L, -2) == LUA_TNIL {
                lua_settop(L, top)
                guard CodecNames.push(L, name: "require") else { throw fail("require is not available") }
                pushName()
                if luamp_pcall(L, 1, 1, 0) != LUA_OK {
                    let why = s.describe(-1).split(separator: "\n").first.map(String.init) ?? "?"
                    throw fail("module '\(text(nameBytes))' cannot be loaded here (\(why))")
                }
            } else {
                luamp_remove(L, -2)
            }
            // Walk the dot-separated field path with raw gets.
            var from = 0
            while from < pathBytes.count {
                var to = from
                while to < pathBytes.count && pathBytes[to] != UInt8(ascii: ".") { to += 1 }
                guard lua_type(L, -1) == LUA_TTABLE else {
                    let walked = text(nameBytes) + (from == 0 ? "" : "." + text(UnsafeRawBufferPointer(rebasing: pathBytes[..<(from - 1)])))
                    throw fail("\(walked) is a \(s.typeName(at: -1)) here, not a table")
                }
                _ = lua_pushlstring(L, (pathBytes.baseAddress! + from).assumingMemoryBound(to: CChar.self), to - from)
                lua_rawget(L, -2)
                luamp_remove(L, -2)
                if lua_type(L, -1) == LUA_TNIL {
                    throw fail("\(text(nameBytes)).\(text(UnsafeRawBufferPointer(rebasing: pathBytes[..<to]))) does not exist here")
                }
                from = to + 1
            }
        default:
            throw fail("unknown reference source \(source)")
        }
        let got = typeCode(L, -1)
        guard got == type else {
            throw fail("expected a \(typeDescription(type)), found a \(typeDescription(got))")
        }
    }
}
