// Installs mp's synchronization primitives and shared values (docs/sync.md, docs/api.md).

extension MPModule {
    /// `mp.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`,
    /// `Value`, `Array`: all live in the arena and are sendable (registered with `Handles`).
    static func installSync(_ s: LuaStack, _ t: Int32) {
        _ = syncKindsRegistered
        LockKinds.install(s, t)
        SemaphoreKinds.install(s, t)
        EventKind.install(s, t)
        ConditionKind.install(s, t)
        BarrierKind.install(s, t)
        SharedValueKinds.install(s, t)
    }
}

/// Registers every sync kind with `Handles` once per process (thread-safe: runtimes may be
/// created on several threads, as `swift test` does).
private let syncKindsRegistered: Void = {
    for k in [LockKinds.lock, LockKinds.rlock, SemaphoreKinds.semaphore, SemaphoreKinds.bounded,
              EventKind.kind, ConditionKind.kind, BarrierKind.kind, SharedValueKinds.value, SharedValueKinds.array] {
        SharedKinds.register(k)
    }
}()
