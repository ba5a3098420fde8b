// The encoder's fast table walk: reads a table's array part and hash nodes straight from memory.
internal import CLua
internal import LuaMPShims

/// Strings at least this long always go through the stack path (they may be anchored, not copied).
private let fastStringLimit = Encoder.externalThreshold

extension Encoder {
    /// Writes the body of the table at `t` (address `p`) from its memory layout (see
    /// `table_shims.c`; only when `luamp_fasttable_check` passed). Returns (array count, pair
    /// count), or nil — having written nothing — when a key is a table, function or other
    /// non-scalar, which only the `lua_next` path handles. Scalar entries are copied from memory;
    /// non-scalar values are fetched with raw gets and encoded recursively.
    mutating func fastTableBody(_ t: Int32, _ parts: luamp_tableparts, depth: Int) throws(EncodeFailure) -> (Int64, Int64)? {
        let nodes = parts.nodes!
        let nsize = Int(parts.nsize)
        var i = 0
        while i < nsize {   // pre-scan: every live key must be a scalar
            let node = nodes + i * Int(LUAMP_NODE_SIZE)
            if node.load(fromByteOffset: 8, as: UInt8.self) & 0x0F != 0 {
                let ktt = node.load(fromByteOffset: Int(LUAMP_NODE_KEYTAG), as: UInt8.self)
                if !isFastScalar(ktt, node + Int(LUAMP_NODE_KEY)) { return nil }
            }
            i += 1
        }
        var narr: Int64 = 0
        var npairs: Int64 = 0
        // Array part: the leading run of non-nil slots is the array section; later slots are pairs.
        let asize = Int(parts.asize)
        if asize > 0 {
            let array = parts.array!
            w.reserve(9 * min(asize, 1 << 16))
            var inSequence = true
            var j = 0
            while j < asize {
                let slot = array + j * Int(LUAMP_SLOT_SIZE)
                let tag = slot.load(fromByteOffset: 8, as: UInt8.self)
                if inSequence && Int(tag) == LUAMP_TAG_FLOAT {   // the number-array loop
                    w.tagged(CodecFormat.Tag.float, slot.load(as: UInt64.self))
                    narr += 1
                } else if inSequence && Int(tag) == LUAMP_TAG_INT {
                    integer(slot.load(as: Int64.self))
                    narr += 1
                } else if tag & 0x0F == 0 {
                    inSequence = false
                } else {
                    if inSequence { narr += 1 } else { integer(Int64(j + 1)); npairs += 1 }
                    if !writeFastScalar(tag, slot) {
                        let runs = luaRuns
                        let vt = lua_rawgeti(L, t, lua_Integer(j + 1))
                        do { try value(lua_gettop(L), type: vt, depth: depth + 1) } catch {
                            var e = error; e.components.append("[\(j + 1)]"); throw e
                        }
                        lua_settop(L, -2)
                        if runs != luaRuns { try checkUnchanged(t, parts) }
                    }
                }
                j += 1
            }
        }
        // Hash nodes: all pairs.
        i = 0
        while i < nsize {
            let node = nodes + i * Int(LUAMP_NODE_SIZE)
            let vtt = node.load(fromByteOffset: 8, as: UInt8.self)
            if vtt & 0x0F != 0 {
                let ktt = node.load(fromByteOffset: Int(LUAMP_NODE_KEYTAG), as: UInt8.self)
                let key = node + Int(LUAMP_NODE_KEY)
                // The pre-scan saw only scalar keys; one that is not can only be new (Lua code ran).
                guard writeFastScalar(ktt, key) else { throw Encoder.changed() }
                npairs += 1
                if !writeFastScalar(vtt, node) {
                    let runs = luaRuns
                    pushFastScalar(ktt, key)
                    let vt = lua_rawget(L, t)
                    do { try value(lua_gettop(L), type: vt, depth: depth + 1) } catch {
                        var e = error
                        pushFastScalar(ktt, key)
                        e.components.append(CodecPath.component(forKeyAt: lua_gettop(L), L))
                        throw e
                    }
                    lua_settop(L, -2)
                    if runs != luaRuns { try checkUnchanged(t, parts) }
                }
            }
            i += 1
        }
        return (narr, npairs)
    }

    /// Lua code ran inside a nested value (`__mp_reduce`): the parts read from memory must still
    /// be the table's, or the walk would read freed memory.
    @inline(never)
    private func checkUnchanged(_ t: Int32, _ parts: luamp_tableparts) throws(EncodeFailure) {
        var now = luamp_tableparts()
        _ = luamp_fasttable(lua_topointer(L, t), &now)
        guard now.array == parts.array, now.asize == parts.asize, now.nodes == parts.nodes, now.nsize == parts.nsize else {
            throw Encoder.changed()
        }
    }

    /// Whether a slot with type tag `tag` holds a scalar the fast path can write from memory.
    @inline(__always)
    private func isFastScalar(_ tag: UInt8, _ slot: UnsafeRawPointer) -> Bool {
        switch Int(tag) {
        case LUAMP_TAG_INT, LUAMP_TAG_FLOAT, LUAMP_TAG_TRUE, LUAMP_TAG_FALSE, LUAMP_TAG_SHORTSTR:
            return true
        case LUAMP_TAG_LONGSTR:
            return stringBytes(tag, slot).count < fastStringLimit
        default:
            return false
        }
    }

    /// The bytes of the string whose pointer is stored in `slot`.
    @inline(__always)
    private func stringBytes(_ tag: UInt8, _ slot: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        let ts = slot.load(as: UnsafeRawPointer.self)
        let len = Int(tag) == LUAMP_TAG_SHORTSTR
            ? Int(ts.load(fromByteOffset: Int(LUAMP_STR_SHORTLEN), as: UInt8.self))
            : ts.load(fromByteOffset: Int(LUAMP_STR_LONGLEN), as: Int.self)
        return UnsafeRawBufferPointer(start: ts + Int(LUAMP_STR_CONTENTS), count: len)
    }

    /// Writes the scalar in `slot` (tag `tag`); false, writing nothing, for anything else.
    @inline(__always)
    private mutating func writeFastScalar(_ tag: UInt8, _ slot: UnsafeRawPointer) -> Bool {
        switch Int(tag) {
        case LUAMP_TAG_FLOAT: w.tagged(CodecFormat.Tag.float, slot.load(as: UInt64.self))
        case LUAMP_TAG_INT: integer(slot.load(as: Int64.self))
        case LUAMP_TAG_TRUE: w.u8(CodecFormat.Tag.true)
        case LUAMP_TAG_FALSE: w.u8(CodecFormat.Tag.false)
        case LUAMP_TAG_SHORTSTR, LUAMP_TAG_LONGSTR:
            let b = stringBytes(tag, slot)
            if b.count >= fastStringLimit { return false }
            string(b.baseAddress!, b.count)
        default: return false
        }
        return true
    }

    /// Pushes the scalar key in `slot` (one the pre-scan accepted). Stack: [-0, +1].
    private mutating func pushFastScalar(_ tag: UInt8, _ slot: UnsafeRawPointer) {
        switch Int(tag) {
        case LUAMP_TAG_FLOAT: lua_pushnumber(L, slot.load(as: Double.self))
        case LUAMP_TAG_INT: lua_pushinteger(L, lua_Integer(slot.load(as: Int64.self)))
        case LUAMP_TAG_TRUE: lua_pushboolean(L, 1)
        case LUAMP_TAG_FALSE: lua_pushboolean(L, 0)
        default:
            holdGC()   // lua_pushlstring may run a GC step
            let b = stringBytes(tag, slot)
            _ = lua_pushlstring(L, b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count)
        }
    }
}
