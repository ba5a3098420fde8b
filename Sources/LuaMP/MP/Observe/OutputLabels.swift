// OutputLabels: `label_output` — a child's output lines start with `[name] `, each written whole.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Labels the output of child processes (`mp.Process{label_output = true}`,
/// `mp.Pool{label_output = true}`, `luamp --label-output`, `LUAMP_LABEL_OUTPUT=1`).
///
/// In the child, before its Lua code runs, C's `stdout`/`stderr` and the `io` library's streams
/// are replaced by streams that write each complete line as `[name] line` with one `write(2)`
/// (`luamp_label.h`): `print`, `io.write`, `io.stdout:write` and `io.stderr:write` are all
/// labelled, and lines of different processes never tear (on a pipe, lines up to PIPE_BUF,
/// 4096 bytes, are atomic; on files and terminals every line is one write). A last line
/// without a newline is written when the process ends. A child of a labelled process labels
/// its own lines too.
enum OutputLabels {
    /// `--label-output` / `LUAMP_LABEL_OUTPUT=1`: every child (per process: `Observability.settings`).
    static var all: Bool { Observability.settings.withLock { $0.labelAll } }

    static func readSettings() {
        let env = getenv("LUAMP_LABEL_OUTPUT").flatMap { String(validatingCString: $0) }.map { !$0.isEmpty && $0 != "0" } ?? false
        Observability.settings.withLock { o in
            if env || o.labelOutput { o.labelAll = true }
        }
    }

    /// In a freshly forked child named `name`: installs the labels when asked (`label`), when
    /// every child is labelled, or when the parent's output was labelled.
    static func enterChild(_ s: LuaStack, label: Bool, name: String) {
        guard label || all || luamp_label_active() != 0 else { return }
        _ = luamp_label_install(s.L, "[\(name)] ")
    }

    /// A pool worker (`Pool{label_output = true}`).
    static func enterWorker(_ s: LuaStack, label: Bool, name: String) { enterChild(s, label: label, name: name) }
}
