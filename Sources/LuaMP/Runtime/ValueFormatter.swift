// ValueFormatter: how the REPL shows a Lua value — tables pretty-printed, cycles marked, long tables elided.
internal import CLua
internal import LuaMPShims

/// Formats the Lua value at a stack index for people (the REPL's output).
///
/// - Top-level strings print as they are; strings inside tables are quoted and escaped.
/// - Tables show their sequence part first, then the other keys sorted (numbers, strings,
///   booleans, then the rest), nested up to `maxDepth` levels (`{…}` beyond), at most
///   `maxItems` entries each (`…` for the rest). A table already being printed on the current
///   path shows as `<cycle: table: 0x…>`. Short tables stay on one line; longer ones get one
///   entry per line, indented.
/// - Values with a `__tostring` metamethod (and userdata, functions, threads) print as
///   `tostring` gives them, run under protection.
///
/// Only raw table access is used, so formatting never runs `__index`/`__pairs` and never raises.
struct ValueFormatter {
    let stack: LuaStack
    var width: Int = 80
    var maxDepth: Int = 4
    var maxItems: Int = 50

    init(stack: LuaStack, width: Int = 80) {
        self.stack = stack
        self.width = max(20, width)
    }

    /// The text for the value at `index`. Stack: [-0, +0].
    func format(at index: Int32) -> String {
        let i = stack.absIndex(index)
        if stack.type(at: i) == .string { return stack.toString(i) ?? "" }
        var path = Set<UnsafeRawPointer>()
        return render(node(at: i, depth: 0, path: &path), indent: 0)
    }

    // MARK: building the tree

    private indirect enum Node {
        case leaf(String)
        case table(items: [(key: String?, value: Node)], elided: Int)
    }

    private func node(at i: Int32, depth: Int, path: inout Set<UnsafeRawPointer>) -> Node {
        let s = stack
        switch s.type(at: i) {
        case .string:
            return .leaf(LuaLiteral.quote(s.toBytes(i).map { Array($0) } ?? []))
        case .table:
            if hasToString(i) { return .leaf(s.describe(i)) }
            let p = s.toPointer(i)!
            if path.contains(p) { return .leaf("<cycle: \(s.describe(i))>") }
            if depth >= maxDepth { return .leaf(isEmpty(i) ? "{}" : "{…}") }
            path.insert(p)
            defer { path.remove(p) }
            return s.preservingTop { tableNode(at: i, depth: depth, path: &path) }
        default:
            return .leaf(s.describe(i))
        }
    }

    private func hasToString(_ i: Int32) -> Bool {
        let s = stack
        guard lua_getmetatable(s.L, i) != 0 else { return false }
        defer { s.pop() }
        let t = s.rawGet(-1, field: "__tostring")
        s.pop()
        return t != .nil
    }

    private func isEmpty(_ i: Int32) -> Bool {
        stack.pushNil()
        if lua_next(stack.L, i) != 0 { stack.pop(2); return false }
        return true
    }

    /// How non-sequence keys are ordered: numbers, strings, booleans, then everything else.
    private struct KeyInfo {
        var rank: Int
        var number: Double = 0
        var bytes: [UInt8] = []
        var slot: Int64

        static func < (a: KeyInfo, b: KeyInfo) -> Bool {
            if a.rank != b.rank { return a.rank < b.rank }
            if a.number != b.number { return a.number < b.number }
            if a.bytes != b.bytes { return a.bytes.lexicographicallyPrecedes(b.bytes) }
            return a.slot < b.slot
        }
    }

    /// Stack: [-0, +0] (the caller restores the top).
    private func tableNode(at t: Int32, depth: Int, path: inout Set<UnsafeRawPointer>) -> Node {
        let s = stack
        s.checkStack(8)
        var items: [(key: String?, value: Node)] = []
        let n = s.rawLength(t)
        let shownArray = min(n, Int64(maxItems))
        if shownArray > 0 {
            for k in 1...shownArray {
                s.rawGet(t, index: k)
                items.append((nil, node(at: s.top, depth: depth + 1, path: &path)))
                s.pop()
            }
        }
        // The other keys, copied into a scratch sequence so they can be sorted and revisited.
        s.newTable()
        let scratch = s.top
        var keys: [KeyInfo] = []
        s.pushNil()
        while lua_next(s.L, t) != 0 {
            s.pop()   // the value; the key stays for lua_next
            var info = KeyInfo(rank: 3, slot: Int64(keys.count + 1))
            switch s.type(at: -1) {
            case .number:
                if s.isInteger(-1), let v = s.toInteger(-1), v >= 1, v <= n { continue }
                info.rank = 0
                info.number = s.toNumber(-1) ?? 0
            case .string:
                info.rank = 1
                info.bytes = Array(s.toBytes(-1)!)
            case .boolean:
                info.rank = 2
                info.number = s.toBool(-1) ? 1 : 0
            default:
                info.rank = 3
            }
            s.pushValue(-1)
            s.rawSet(scratch, index: info.slot)
            keys.append(info)
        }
        keys.sort(by: <)
        let room = max(0, maxItems - Int(shownArray))
        for info in keys.prefix(room) {
            s.rawGet(scratch, index: info.slot)
            let key = keyText(at: s.top)
            s.pushValue(-1)
            lua_rawget(s.L, t)
            items.append((key, node(at: s.top, depth: depth + 1, path: &path)))
            s.pop(2)
        }
        let elided = Int(n - shownArray) + max(0, keys.count - room)
        return .table(items: items, elided: elided)
    }

    private func keyText(at i: Int32) -> String {
        let s = stack
        if s.type(at: i) == .string, let b = s.toBytes(i) {
            let bytes = Array(b)
            if LuaLiteral.isIdentifier(bytes) { return String(decoding: bytes, as: UTF8.self) }
            return "[" + LuaLiteral.quote(bytes) + "]"
        }
        return "[" + s.describe(i) + "]"
    }

    // MARK: rendering

    private func render(_ node: Node, indent: Int) -> String {
        switch node {
        case .leaf(let text):
            return text
        case .table(let items, let elided):
            if items.isEmpty && elided == 0 { return "{}" }
            if let line = inline(node), indent + line.count <= width { return line }
            let pad = String(repeating: "  ", count: indent + 1)
            var lines: [String] = []
            for (key, value) in items {
                let v = render(value, indent: indent + 1)
                lines.append(pad + (key.map { $0 + " = " } ?? "") + v)
            }
            if elided > 0 { lines.append(pad + "… (\(elided) more)") }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + String(repeating: "  ", count: indent) + "}"
        }
    }

    /// The one-line form, or nil when it contains a multi-line leaf.
    private func inline(_ node: Node) -> String? {
        switch node {
        case .leaf(let text):
            return text.contains("\n") ? nil : text
        case .table(let items, let elided):
            var parts: [String] = []
            var length = 2
            for (key, value) in items {
                guard let v = inline(value) else { return nil }
                let part = (key.map { $0 + " = " } ?? "") + v
                length += part.count + 2
                if length > width * 4 { return nil }
                parts.append(part)
            }
            if elided > 0 { parts.append("… (\(elided) more)") }
            return "{" + parts.joined(separator: ", ") + "}"
        }
    }
}
