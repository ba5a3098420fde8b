// The pool's number fast paths: a chunk of plain numbers is encoded straight from the input
// table's memory, and a results tuple of plain numbers is stored straight into the results table;
// a worker decodes such a chunk into a list the same way and encodes its results from it.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// `map` over a list of numbers (the common case: `pool:map(f, {1, 2, ...})`) spends most of the
/// host's time in per-value Lua API calls: `lua_rawgeti` + `lua_type` + `lua_tointegerx` per item
/// to encode, then the decoder's push + `lua_rawseti` per result. Both ends read or write the
/// table's array part directly instead (the layout `table_shims.c` verified at start-up; when the
/// fast table path is off, or any value is not a number, or the range is not in the array part,
/// these return false and the caller takes the general codec path — same bytes, same table).
/// The wire format is the codec's ordinary tuple message: workers see no difference.
enum PoolNumbers {
    /// Appends the codec tuple of `input[position ..< position + count]` (the table at stack
    /// index `input`) to `frame` when every item is an integer or a float in the array part.
    /// Returns false, with `frame` unchanged, otherwise (or when the buffer cannot grow).
    static func encodeList(_ s: LuaStack, input: Int32, position: Int, count: Int, into frame: inout [UInt8]) -> Bool {
        guard Encoder.fastTables, count > 0, position >= 1 else { return false }
        var parts = luamp_tableparts()
        guard luamp_fasttable(lua_topointer(s.L, input), &parts) != 0, let array = parts.array,
              position - 1 + count <= Int(parts.asize) else { return false }
        let first = array + (position - 1) * Int(LUAMP_SLOT_SIZE)
        var i = 0
        while i < count {   // every slot a number, or nothing is written
            let tag = Int(first.load(fromByteOffset: i * Int(LUAMP_SLOT_SIZE) + 8, as: UInt8.self))
            if tag != LUAMP_TAG_INT && tag != LUAMP_TAG_FLOAT { return false }
            i += 1
        }
        let old = frame.count
        let most = 6 + 9 * count
        if frame.capacity < old + most {
            // As appendOrThrow: never let Swift's allocator abort on out of memory.
            guard let probe = malloc(old + most + 256) else { return false }
            free(probe)
            frame.reserveCapacity(old + most)
        }
        frame.append(contentsOf: repeatElement(0, count: most))
        let used: Int = frame.withUnsafeMutableBytes { b in
            let out = b.baseAddress! + old
            out.storeBytes(of: CodecFormat.version, as: UInt8.self)
            out.storeBytes(of: CodecFormat.kindTuple, toByteOffset: 1, as: UInt8.self)
            (out + 2).storeBytes(of: UInt32(count).littleEndian, as: UInt32.self)
            var n = 6
            var i = 0
            while i < count {
                let slot = first + i * Int(LUAMP_SLOT_SIZE)
                if Int(slot.load(fromByteOffset: 8, as: UInt8.self)) == LUAMP_TAG_FLOAT {
                    out.storeBytes(of: CodecFormat.Tag.float, toByteOffset: n, as: UInt8.self)
                    (out + n + 1).storeBytes(of: slot.load(as: UInt64.self).littleEndian, as: UInt64.self)
                    n += 9
                } else {
                    let v = slot.load(as: Int64.self)
                    if v >= -128 && v <= 127 {
                        out.storeBytes(of: CodecFormat.Tag.int8, toByteOffset: n, as: UInt8.self)
                        out.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: n + 1, as: Int8.self)
                        n += 2
                    } else if v >= Int64(Int32.min) && v <= Int64(Int32.max) {
                        out.storeBytes(of: CodecFormat.Tag.int32, toByteOffset: n, as: UInt8.self)
                        (out + n + 1).storeBytes(of: Int32(truncatingIfNeeded: v).littleEndian, as: Int32.self)
                        n += 5
                    } else {
                        out.storeBytes(of: CodecFormat.Tag.int64, toByteOffset: n, as: UInt8.self)
                        (out + n + 1).storeBytes(of: v.littleEndian, as: Int64.self)
                        n += 9
                    }
                }
                i += 1
            }
            return n
        }
        frame.removeLast(most - used)
        return true
    }

    /// Stores a tuple message of exactly `count` plain numbers into `results[position ...]` (the
    /// table at stack index `results`, whose array part holds that range). Returns false, having
    /// stored nothing, when the message is anything else (the caller decodes it in full).
    static func storeResults(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer, results: Int32, position: Int, count: Int) -> Bool {
        guard Encoder.fastTables, count > 0, position >= 1, bytes.count >= 6 + 2 * count,
              bytes.count <= 6 + 9 * count else { return false }
        let p = bytes.baseAddress!
        guard p.load(as: UInt8.self) == CodecFormat.version, p.load(fromByteOffset: 1, as: UInt8.self) == CodecFormat.kindTuple,
              Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))) == count else { return false }
        var parts = luamp_tableparts()
        guard luamp_fasttable(lua_topointer(s.L, results), &parts) != 0, let array = parts.array,
              position - 1 + count <= Int(parts.asize) else { return false }
        // Check the whole message first: a malformed one goes to the decoder, which reports it.
        var at = 6, i = 0
        while i < count, at < bytes.count {
            switch p.load(fromByteOffset: at, as: UInt8.self) {
            case CodecFormat.Tag.int8: at += 2
            case CodecFormat.Tag.int32: at += 5
            case CodecFormat.Tag.int64, CodecFormat.Tag.float: at += 9
            default: return false
            }
            i += 1
        }
        guard i == count, at == bytes.count else { return false }
        // Numbers are not collectable: storing them needs no GC barrier.
        let slots = UnsafeMutableRawPointer(mutating: array) + (position - 1) * Int(LUAMP_SLOT_SIZE)
        at = 6
        i = 0
        while i < count {
            let slot = slots + i * Int(LUAMP_SLOT_SIZE)
            let tag = p.load(fromByteOffset: at, as: UInt8.self)
            switch tag {
            case CodecFormat.Tag.int8:
                slot.storeBytes(of: Int64(p.load(fromByteOffset: at + 1, as: Int8.self)), as: Int64.self)
                slot.storeBytes(of: UInt8(LUAMP_TAG_INT), toByteOffset: 8, as: UInt8.self)
                at += 2
            case CodecFormat.Tag.int32:
                slot.storeBytes(of: Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: at + 1, as: Int32.self))), as: Int64.self)
                slot.storeBytes(of: UInt8(LUAMP_TAG_INT), toByteOffset: 8, as: UInt8.self)
                at += 5
            case CodecFormat.Tag.int64:
                slot.storeBytes(of: Int64(littleEndian: p.loadUnaligned(fromByteOffset: at + 1, as: Int64.self)), as: Int64.self)
                slot.storeBytes(of: UInt8(LUAMP_TAG_INT), toByteOffset: 8, as: UInt8.self)
                at += 9
            default:
                slot.storeBytes(of: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: at + 1, as: UInt64.self)), as: UInt64.self)
                slot.storeBytes(of: UInt8(LUAMP_TAG_FLOAT), toByteOffset: 8, as: UInt8.self)
                at += 9
            }
            i += 1
        }
        return true
    }

    /// Worker: pushes a new list holding the chunk's items when `bytes` is a tuple message of
    /// plain numbers, and returns their count; returns nil, with the stack unchanged, otherwise
    /// (the caller decodes it in full). The worker runs the map loop over the list, then
    /// `encodeList` sends the results back from it: same wire bytes as the general path.
    static func decodeList(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer) -> Int? {
        guard Encoder.fastTables, bytes.count >= 8 else { return nil }
        let p = bytes.baseAddress!
        guard p.load(as: UInt8.self) == CodecFormat.version, p.load(fromByteOffset: 1, as: UInt8.self) == CodecFormat.kindTuple
        else { return nil }
        let count = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        guard count > 0, 6 + 2 * count <= bytes.count, bytes.count <= 6 + 9 * count else { return nil }
        guard luamp_pool_newlist(s.L, Int32(count)) == LUA_OK else {
            s.pop()
            return nil
        }
        guard storeResults(s, bytes, results: s.top, position: 1, count: count) else {
            s.pop()
            return nil
        }
        return count
    }
}
