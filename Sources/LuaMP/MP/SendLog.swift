// SendLog: what encoding a message did besides making bytes (posted pipe ends, object references), undone when the send fails.

/// Encoding some mp objects has effects outside the bytes: a pipe end posts its descriptors
/// (`PipeMailbox`), an arena object takes a reference for the message (`SharedHolds`). A send
/// that fails after encoding (queue `Full`, a broken pipe, an unsendable value met later in the
/// same message) must undo them, or they would stay for the rest of the run:
/// `undoingOnFailure` records them while `body` runs and undoes them if it throws.
///
/// `dryRun`: encodings made only to compare bytes (the pool's function cache re-encodes a
/// function's upvalues on each use) must have no effect at all; encoders check it.
enum SendLog {
    /// True while encoding only to compare: handle encoders produce their bytes and nothing else.
    nonisolated(unsafe) static var dryRun = false
    nonisolated(unsafe) private static var depth = 0
    nonisolated(unsafe) private static var tokens: [UInt64] = []
    nonisolated(unsafe) private static var references: [(UInt64, SharedKind)] = []

    /// A pipe end's descriptors were posted under `token`.
    static func posted(_ token: UInt64) { if depth > 0 { tokens.append(token) } }

    /// A reference to the arena object at `offset` was taken for the message.
    static func referenced(_ offset: UInt64, _ kind: SharedKind) { if depth > 0 { references.append((offset, kind)) } }

    /// Runs `body` (an encode and a send); if it throws, takes back what its encodings posted
    /// and drops the references they took, then rethrows.
    static func undoingOnFailure<R>(_ body: () throws -> R) throws -> R {
        let t0 = tokens.count, r0 = references.count
        depth += 1
        defer {
            depth -= 1
            if depth == 0 { tokens.removeAll(keepingCapacity: true); references.removeAll(keepingCapacity: true) }
        }
        do {
            return try body()
        } catch {
            let t = Array(tokens[t0...]), r = Array(references[r0...])
            tokens.removeSubrange(t0...); references.removeSubrange(r0...)
            for token in t { PipeMailbox.cancel(token) }
            for (off, kind) in r { SharedHolds.dropMessageReference(off, kind) }
            throw error
        }
    }

    /// Runs `body` with `dryRun` set.
    static func withoutEffects<R>(_ body: () throws -> R) rethrows -> R {
        let old = dryRun
        dryRun = true
        defer { dryRun = old }
        return try body()
    }
}
