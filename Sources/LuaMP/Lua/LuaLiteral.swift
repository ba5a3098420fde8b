// LuaLiteral: how a string key or value is written as Lua source — the REPL's tables and SendError paths.

/// Writing strings the way Lua source would (`name`, `["two words"]`, `"a\n"`), so what luamp
/// prints can be read back: the REPL shows table keys and strings with it, and `SendError`
/// paths (`value["two words"]`) name keys with it.
enum LuaLiteral {
    private static let keywords: Set<String> = [
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
        "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ]

    /// Whether the bytes are a Lua name (`[A-Za-z_][A-Za-z0-9_]*`, not a reserved word), so
    /// `t.name` can stand for `t["name"]`.
    static func isIdentifier(_ b: [UInt8]) -> Bool {
        guard let first = b.first, first == 95 || (first | 0x20 >= 97 && first | 0x20 <= 122) else { return false }
        for c in b where !(c == 95 || (c | 0x20 >= 97 && c | 0x20 <= 122) || (c >= 48 && c <= 57)) { return false }
        return !keywords.contains(String(decoding: b, as: UTF8.self))
    }

    /// A double-quoted Lua literal for the bytes: `\\`, `\"`, `\n`, `\r`, `\t`, other control
    /// bytes (and bytes of invalid UTF-8) as `\ddd`; valid UTF-8 text stays readable.
    static func quote(_ bytes: [UInt8]) -> String {
        let valid = String(validating: bytes, as: UTF8.self) != nil
        var out: [UInt8] = [34]
        out.reserveCapacity(bytes.count + 2)
        for (i, c) in bytes.enumerated() {
            switch c {
            case 92: out += [92, 92]
            case 34: out += [92, 34]
            case 10: out += [92, 110]
            case 13: out += [92, 114]
            case 9: out += [92, 116]
            case _ where c < 32 || c == 127 || (c >= 128 && !valid):
                let next = i + 1 < bytes.count ? bytes[i + 1] : 0
                let digits = Array(String(c).utf8)
                out.append(92)
                // Pad to three digits when a digit follows, so the escape reads back unchanged.
                if next >= 48 && next <= 57 { out += Array(repeating: 48, count: 3 - digits.count) }
                out += digits
            default: out.append(c)
            }
        }
        out.append(34)
        return String(decoding: out, as: UTF8.self)
    }
}
