// Outcomes item by item and after deaths: RemoteError values, per-item results and errors, lost items (timeouts, retries), message references.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension PoolState {
    /// A task's `RemoteError` from a failure (message, traceback, the error value's encoding):
    /// `value` is the original error value, decoded here once. Held in the registry.
    func remoteError(_ s: LuaStack, _ r: inout ByteReader, pid: pid_t, position: Int?) throws -> JobError {
        var message = try r.lengthPrefixedString()
        let traceback = try r.lengthPrefixedString()
        let value = try r.lengthPrefixed()
        if let p = position, message.hasPrefix("result["), let close = message.firstIndex(of: "]"),
           let k = Int(message[message.index(message.startIndex, offsetBy: 7)..<close]) {
            // An unsendable result names its input position (the worker knows its place in the chunk).
            message = "result[\(p + k - 1)]" + message[close...].dropFirst()
        }
        let e = MPError("RemoteError", message, [("traceback", .string(traceback)), ("pid", .integer(Int64(pid)))])
        return s.preservingTop {
            e.pushError(onto: s)
            if value.count > 0 {
                let t = s.top
                if (try? SharedHolds.consuming { try Codec.decode(s, value) }) != nil { s.rawSet(t, field: "value") }
                s.top = t
            } else {
                s.push(message); s.rawSet(-2, field: "value")
            }
            return .value(luaL_ref(s.L, s.registryIndex()))
        }
    }

    /// One item of a per-item chunk succeeded: its result goes to its input position.
    func deliverItem(_ s: LuaStack, _ c: PoolChunk, index: Int, bytes: UnsafeRawBufferPointer) {
        let job = c.job
        guard !job.done, !job.cancelled else { return }
        let L = s.L
        let failure: JobError? = s.preservingTop {
            _ = lua_rawgeti(L, s.registryIndex(), lua_Integer(job.resultsRef))
            let results = s.top
            let n: Int32
            do { n = try SharedHolds.consuming { try Codec.decodeTuple(s, bytes) } } catch let e as MPError { return .mp(e) } catch { return .mp(MPError("DecodeError", "\(error)")) }
            guard n == 1 else { return .mp(MPError("DecodeError", "a worker sent \(n) results for one item")) }
            lua_rawseti(L, results, lua_Integer(c.position + index))
            return nil
        }
        if let f = failure { deliverItem(s, c, index: index, error: f) }
    }

    /// One item failed: with errors = "return" the error object takes its place in the
    /// results; imap raises it at its position; otherwise it is the job's failure there.
    func deliverItem(_ s: LuaStack, _ c: PoolChunk, index: Int, error: JobError) {
        let job = c.job
        let position = c.position + index
        guard !job.done, !job.cancelled else {
            if case .value(let r) = error { garbage.append(r) }
            return
        }
        if job.isImap {
            if job.returnErrors {
                placeError(s, job, position, error)
            } else {
                job.itemErrors[position] = error
            }
        } else if job.returnErrors {
            placeError(s, job, position, error)
        } else {
            job.record(error, at: position)
        }
    }

    /// An item of a per-item chunk has its outcome; the chunk is done once all have (across
    /// the resends after deaths).
    func itemSettled(_ c: PoolChunk) {
        c.group.remaining -= 1
        guard c.group.remaining == 0 else { return }
        if c.job.done || c.job.cancelled { drop(c) } else { finishChunk(c, nil) }
    }

    /// Stores an error object in the results at `position` (errors = "return").
    func placeError(_ s: LuaStack, _ job: PoolJob, _ position: Int, _ e: JobError) {
        s.preservingTop {
            _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(job.resultsRef))
            pushError(s, e)
            lua_rawseti(s.L, -2, lua_Integer(position))
        }
        if case .value(let r) = e { garbage.append(r) }
    }

    /// A chunk its worker may have started when it died. Run item by item, only the running
    /// item is lost (the rest is sent again from the next item); otherwise the whole chunk.
    /// The lost item fails with `TimeoutError` (killed by its timer) or `WorkerLost`, or runs
    /// again on any worker while it has retries left.
    func chunkLost(_ s: LuaStack, _ c: PoolChunk, pid: pid_t, code: Int32) {
        let job = c.job
        let timedOut = code == -SIGALRM && job.timeoutMs > 0
        let error = timedOut ? Self.timeoutError(pid: pid, timeoutMs: job.timeoutMs) : Self.workerLost(pid: pid, code: code)
        let index = c.start + c.answered
        if job.done || job.cancelled { return drop(c) }
        if job.perItem {
            if index + 1 < c.end { retry.prepend([c.resend(start: index + 1, end: c.end, attempts: 0)]) }
            if index < c.end {
                if c.attempts < job.retries && !job.done && !job.cancelled {
                    retry.prepend([c.resend(start: index, end: index + 1, attempts: c.attempts + 1)])
                } else {
                    deliverItem(s, c, index: index, error: .mp(error))
                    itemSettled(c)
                }
            }
            return
        }
        if c.attempts < job.retries && !job.done && !job.cancelled {
            retry.prepend([c.resend(start: c.start, end: c.end, attempts: c.attempts + 1)])
            return
        }
        deliver(s, c, error: .mp(error))
    }

    /// Gives back the message references of the objects a chunk's frame carries: it will not
    /// be sent again, and a worker that decoded them took its own hold.
    /// (A resend of the same chunk still queued or in a pipe keeps them until it ends too.)
    func releaseReferences(of c: PoolChunk) {
        guard !c.group.references.isEmpty else { return }
        let g = c.group
        for case let w? in workers where w.inflight.contains(where: { $0.group === g && $0 !== c }) { return }
        if retry.contains(where: { $0.group === g && $0 !== c }) { return }
        for (off, kind) in c.group.references { SharedHolds.dropMessageReference(off, kind) }
        c.group.references.removeAll()
    }

    /// `TimeoutError` for an item killed by its timer: names the pid and the timeout.
    static func timeoutError(pid: pid_t, timeoutMs: UInt32) -> MPError {
        let t = Double(timeoutMs) / 1000
        return MPError("TimeoutError", "a task ran longer than its timeout of \(t) s; worker pid \(pid) was stopped",
                       [("pid", .integer(Int64(pid))), ("timeout", .number(t))])
    }
}
