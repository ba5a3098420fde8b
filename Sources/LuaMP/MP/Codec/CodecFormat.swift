// The codec's wire format: version, message kinds, value tags and limits (docs/codec.md "Format").

/// Constants of the luamp wire format, version 2 (version 1 is version 2 without tags 0x13…0x19).
///
/// A message is `[version][kind][payload]`: `kind` is `value` (one encoded value) or `tuple`
/// (a `UInt32` count, then that many values). Every multi-byte number is little-endian.
enum CodecFormat {
    /// The format version byte the encoder writes.
    static let version: UInt8 = 2
    /// The oldest version the decoder still reads (a subset of this one).
    static let oldestReadable: UInt8 = 1
    /// Message kinds (second byte).
    static let kindValue: UInt8 = 0
    static let kindTuple: UInt8 = 1

    /// Deepest nesting of tables/functions a message may have (encoder and decoder).
    static let maxDepth = 200
    /// Lua stack slots an encode or decode may use: each level holds at most three (table, its
    /// metatable and a key, or function and upvalue), plus a few for the leaves. Checked once per
    /// message (and again after an `__mp_reduce` call).
    static let stackNeeded: Int32 = Int32(3 * maxDepth + 40)

    /// Value tags.
    enum Tag {
        static let `nil`: UInt8 = 0x00
        static let `false`: UInt8 = 0x01
        static let `true`: UInt8 = 0x02
        /// Integer in 1 / 4 / 8 bytes (two's complement).
        static let int8: UInt8 = 0x03
        static let int32: UInt8 = 0x04
        static let int64: UInt8 = 0x05
        /// Float: the 8 bytes of the IEEE-754 double (NaN payload, ±inf, -0.0 exact).
        static let float: UInt8 = 0x06
        /// String with a 1 / 4 / 8-byte length, then the bytes.
        static let str8: UInt8 = 0x07
        static let str32: UInt8 = 0x08
        static let str64: UInt8 = 0x09
        /// Table: `UInt32` array count, `UInt32` pair count, array values (keys 1…n), then key/value pairs.
        static let table: UInt8 = 0x0A
        /// The same, for a table referenced again later in the message (the decoder remembers it).
        static let sharedTable: UInt8 = 0x0B
        /// A reference: `UInt64` offset (from the message start) of an earlier shared table/function.
        static let ref: UInt8 = 0x0C
        /// Lua function: `UInt32` bytecode length, bytecode, `UInt64` MAC, `UInt8` upvalue count, upvalues.
        static let function: UInt8 = 0x0D
        static let sharedFunction: UInt8 = 0x0E
        /// The sender's globals table (`_G` / `_ENV`): becomes the receiver's globals.
        static let globals: UInt8 = 0x0F
        /// Standard-library or mp C function by name: `UInt8` length, name.
        static let cfunction: UInt8 = 0x10
        /// In an upvalue list only: this upvalue is the same variable as upvalue `UInt8` of the
        /// earlier shared function at `UInt64` offset (closures sharing a local keep sharing it).
        static let joinedUpvalue: UInt8 = 0x12
        /// mp object: `UInt8` kind-name length, kind name, `UInt32` payload length, payload.
        static let handle: UInt8 = 0x11
        /// A value by reference: `UInt8` source (`Reference.module` / `.registered`), `UInt8`
        /// expected type (`Reference.typeCode`), `UInt16` length + name (module or registered
        /// name), `UInt16` length + field path (`dns.toip`, empty for the module itself), `UInt64`
        /// MAC of those bytes. The receiver resolves it through package.loaded/require or the
        /// mp.register table.
        static let reference: UInt8 = 0x13
        static let sharedReference: UInt8 = 0x14
        /// A table with a metatable: as `table`, then the metatable (any table encoding).
        static let metaTable: UInt8 = 0x15
        static let sharedMetaTable: UInt8 = 0x16
        /// A userdata rebuilt by its `__mp_reduce`: `UInt8` argument count, the constructor (a Lua
        /// function, a reference, or a ref to an earlier one of those), then the arguments.
        static let reduced: UInt8 = 0x17
        static let sharedReduced: UInt8 = 0x18
        /// An open Lua file handle: `UInt8` length, then a `DescriptorName`, the `Int64` logical
        /// position (-1: not seekable) and the `UInt64` mailbox token of the descriptor posted by
        /// SCM_RIGHTS (0: none), then the `UInt64` MAC of those bytes.
        static let file: UInt8 = 0x19

        /// The shared variant of an object tag (the encoder patches it when a second reference
        /// appears), or nil for tags that are never shared.
        @inline(__always)
        static func shared(_ tag: UInt8) -> UInt8? {
            switch tag {
            case table, function, reference, metaTable, reduced: return tag + 1
            default: return nil
            }
        }
    }
}
