// FaultPoint: test-only fault points armed from an environment variable (the C side is luamp_faults.h).
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// The points of one fault variable (`name:n`): `names[i]` is the point whose raw value is the
/// first case's plus `i`; raw values are bit numbers of `luamp_fault_armed` (0…31).
protocol FaultPoint: CaseIterable, RawRepresentable where RawValue == Int32 {
    static var names: [String] { get }
}

extension FaultPoint {
    /// Arms the point named by `variable` (`point:n`, n > 0) if it is set; malformed values arm
    /// nothing.
    static func arm(fromEnvironment variable: String) {
        guard let v = getenv(variable) else { return }
        let parts = String(cString: v).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = names.firstIndex(of: String(parts[0])), let n = Int32(parts[1]), n > 0
        else { return }
        luamp_fault_arm(Array(allCases)[i].rawValue, n)
    }
}
