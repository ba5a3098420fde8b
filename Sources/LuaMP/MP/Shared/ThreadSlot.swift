// ThreadSlot: per-thread objects of the mp runtime, kept in the C thread-local slots of luamp_thread.h.
internal import LuaMPShims

/// The calling thread's object in slot `slot`, made by `make` on the thread's first use and
/// kept for the thread's life. Per thread, not per process: runtimes on several threads of an
/// embedding app never share it; only its own thread touches it (so it needs no lock).
@inline(__always)
func threadObject<T: AnyObject>(_ slot: Int32, _ make: () -> T) -> T {
    if let p = luamp_thread_slot(slot) { return Unmanaged<T>.fromOpaque(p).takeUnretainedValue() }
    let object = make()
    luamp_thread_set_slot(slot, Unmanaged.passRetained(object).toOpaque())
    return object
}
