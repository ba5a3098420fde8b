// SendLog: what encoding a message did besides making bytes (posted pipe ends, object references), undone when the send fails.
internal import LuaMPShims

/// Encoding some mp objects has effects outside the bytes: a pipe end posts its descriptors
/// (`PipeMailbox`), an arena object takes a reference for the message (`SharedHolds`). A send
/// that fails after encoding (queue `Full`, a broken pipe, an unsendable value met later in the
/// same message) must undo them, or they would stay for the rest of the run:
/// `undoingOnFailure` records them while `body` runs and undoes them if it throws.
///
/// `dryRun`: encodings made only to compare bytes (the pool's function cache re-encodes a
/// function's upvalues on each use) must have no effect at all; encoders check it.
/// `consuming`: the decode running now takes over its message's references (`SharedHolds`).
///
/// The state is per thread (`threadObject`): runtimes on several threads never mix logs.
enum SendLog {
    private final class Frame {
        var depth = 0
        var dryRun = false
        var consuming = false
        var tokens: [UInt64] = []
        var references: [(UInt64, SharedKind)] = []
    }

    private static var frame: Frame { threadObject(Int32(LUAMP_SLOT_SENDLOG), Frame.init) }

    /// True while encoding only to compare: handle encoders produce their bytes and nothing else.
    static var dryRun: Bool { frame.dryRun }

    /// True while a decode takes over its message's references.
    static var consuming: Bool { frame.consuming }

    /// A pipe end's descriptors were posted under `token`.
    static func posted(_ token: UInt64) {
        let f = frame
        if f.depth > 0 { f.tokens.append(token) }
    }

    /// A reference to the arena object at `offset` was taken for the message.
    static func referenced(_ offset: UInt64, _ kind: SharedKind) {
        let f = frame
        if f.depth > 0 { f.references.append((offset, kind)) }
    }

    /// Runs `body` (an encode and a send); if it throws, takes back what its encodings posted
    /// and drops the references they took, then rethrows.
    static func undoingOnFailure<R>(_ body: () throws -> R) throws -> R {
        let f = frame
        let t0 = f.tokens.count, r0 = f.references.count
        f.depth += 1
        defer {
            f.depth -= 1
            if f.depth == 0 { f.tokens.removeAll(keepingCapacity: true); f.references.removeAll(keepingCapacity: true) }
        }
        do {
            return try body()
        } catch {
            let t = Array(f.tokens[t0...]), r = Array(f.references[r0...])
            f.tokens.removeSubrange(t0...); f.references.removeSubrange(r0...)
            for token in t { PipeMailbox.cancel(token) }
            for (off, kind) in r { SharedHolds.dropMessageReference(off, kind) }
            throw error
        }
    }

    /// Runs `body` (an encode) like `undoingOnFailure`, and returns with its result the
    /// references its encodings took: a message kept and sent again (a pool chunk, re-sent
    /// after a worker died, decoded by non-consuming decodes) gives them back with
    /// `SharedHolds.dropMessageReference` once it is no longer needed.
    static func collectingReferences<R>(_ body: () throws -> R) throws -> (R, [(UInt64, SharedKind)]) {
        let f = frame
        var refs: [(UInt64, SharedKind)] = []
        let v = try undoingOnFailure { () throws -> R in
            let r0 = f.references.count
            let v = try body()
            if f.references.count > r0 { refs = Array(f.references[r0...]) }
            return v
        }
        return (v, refs)
    }

    /// Runs `body` with `dryRun` set.
    static func withoutEffects<R>(_ body: () throws -> R) rethrows -> R { try with(\.dryRun, body) }

    /// Runs `body` with `consuming` set.
    static func consuming<R>(_ body: () throws -> R) rethrows -> R { try with(\.consuming, body) }

    private static func with<R>(_ flag: ReferenceWritableKeyPath<Frame, Bool>, _ body: () throws -> R) rethrows -> R {
        let f = frame
        let old = f[keyPath: flag]
        f[keyPath: flag] = true
        defer { f[keyPath: flag] = old }
        return try body()
    }
}
