// mp.dumps / mp.loads: the codec as users see it, and the codec's install step.
internal import CLua

extension MPModule {
    /// Installs `mp.dumps` and `mp.loads`, creates the process tree's MAC key (so every fork
    /// inherits it) and snapshots the standard-library C functions sent by name.
    static func installCodec(_ s: LuaStack, _ t: Int32) {
        CodecKey.prepare()
        CodecNames.install(s, mp: t)
        s.setFunction(t, "dumps") { s in
            try Codec.withEncoded(s, at: 1, path: "value") { s.push(bytes: $0) }
            return 1
        }
        s.setFunction(t, "loads") { s in
            guard s.type(at: 1) == .string, let b = s.toBytes(1) else {
                throw LuaArgumentError(1, "string expected, got \(s.isNoneOrNil(1) ? "no value" : s.typeName(at: 1))")
            }
            try Codec.decode(s, b)
            return 1
        }
    }
}
