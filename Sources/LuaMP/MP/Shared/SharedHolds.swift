// SharedHolds: reference counts of arena objects across the process tree (stub).
enum SharedHolds {
    static func dropMessageReference(_ off: UInt64) {}
}
