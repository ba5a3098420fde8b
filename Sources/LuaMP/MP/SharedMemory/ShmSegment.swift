// ShmSegment: named POSIX shared memory (shm_open + mmap), the same objects Python's shared_memory uses.
#if canImport(Glibc)
import Glibc
#endif

/// A mapped named segment. Names follow Python's `multiprocessing.shared_memory` on Linux: the
/// user-visible name has no slash (`"psm_1234"`), the object is `shm_open("/" + name)`, i.e.
/// the file `/dev/shm/<name>`; so a segment created here opens in Python under the same name
/// and the other way round.
enum ShmSegment {
    /// Checks a user-given name (a leading `/` is accepted and dropped).
    /// - Throws: `LuaRaise` for empty names, names with `/` inside, or longer than 255 bytes.
    static func normalize(_ raw: String) throws -> String {
        var name = Substring(raw)
        while name.hasPrefix("/") { name = name.dropFirst() }
        guard !name.isEmpty else { throw LuaRaise("mp.SharedMemory: empty name") }
        guard !name.contains("/"), !name.utf8.contains(0) else {
            throw LuaRaise("mp.SharedMemory: bad name '\(raw)' (no '/' or NUL inside)")
        }
        guard name.utf8.count <= 255 else { throw LuaRaise("mp.SharedMemory: name longer than 255 bytes") }
        return String(name)
    }

    /// A fresh random name, `luamp_` + 16 hex digits.
    static func randomName() -> String {
        var rng = SystemRandomNumberGenerator()
        let v: UInt64 = rng.next()
        let hex = String(v, radix: 16)
        return "luamp_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Creates (`create`: `O_CREAT|O_EXCL`, sized with `ftruncate`) or opens a segment and maps
    /// all of it read-write.
    /// - Returns: the mapping and its size.
    /// - Throws: `LuaRaise` naming the segment and the reason (exists, not found, permissions…).
    static func open(_ name: String, create: Bool, size: Int) throws -> (UnsafeMutableRawPointer?, Int) {
        let path = "/" + name
        let fd = create ? shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                        : shm_open(path, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { throw LuaRaise("mp.SharedMemory: a segment named '\(name)' already exists") }
            if e == ENOENT { throw LuaRaise("mp.SharedMemory: no segment named '\(name)'") }
            throw LuaRaise("mp.SharedMemory: cannot open '\(name)': \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var length = size
        if create {
            guard ftruncate(fd, off_t(size)) == 0 else {
                let e = errno
                shm_unlink(path)
                throw LuaRaise("mp.SharedMemory: cannot size '\(name)' to \(size) bytes: \(String(cString: strerror(e)))")
            }
        } else {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw LuaRaise("mp.SharedMemory: cannot stat '\(name)': \(String(cString: strerror(errno)))") }
            length = Int(st.st_size)
        }
        guard length > 0 else { return (nil, 0) }
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let base = p, base != MAP_FAILED else {
            let e = errno
            if create { shm_unlink(path) }
            throw LuaRaise("mp.SharedMemory: cannot map '\(name)' (\(length) bytes): \(String(cString: strerror(e)))")
        }
        return (base, length)
    }

    /// `shm_unlink("/" + name)`. Returns errno (0 on success).
    @discardableResult
    static func unlink(_ name: String) -> Int32 {
        shm_unlink("/" + name) == 0 ? 0 : errno
    }
}
