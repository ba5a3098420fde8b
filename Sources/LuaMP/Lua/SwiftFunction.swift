// Swift closures as Lua functions: boxed in a userdata upvalue, released by __gc, called by the C trampoline.
internal import CLua
internal import LuaMPShims

/// A Swift function callable from Lua. It reads its arguments from the stack, pushes its results
/// and returns how many; to raise a Lua error it throws (see `dispatchSwiftFunction`).
typealias SwiftFunction = (LuaStack) throws -> Int32

/// The heap box a Lua closure holds (through a userdata upvalue) for a Swift function.
final class SwiftFunctionBox {
    let name: String
    let function: SwiftFunction
    /// The counter of the state the box was pushed on (nil on a state LuaState did not make).
    let counter: SwiftFunctionBoxCounter?
    init(name: String, function: @escaping SwiftFunction, counter: SwiftFunctionBoxCounter?) {
        self.name = name
        self.function = function
        self.counter = counter
    }
}

/// The live Swift-function boxes of one Lua state, so tests can prove closures are released.
/// Per state, not global: other runtimes (other tests, threads of an embedding app) never
/// change it. Only the state's own thread touches it; boxes keep it alive past `lua_close`.
final class SwiftFunctionBoxCounter {
    fileprivate(set) var live = 0

    /// The counter of the state `L` belongs to (in its extra space), if LuaState set one.
    static func of(_ L: OpaquePointer) -> SwiftFunctionBoxCounter? {
        guard let p = luamp_extraspace(L).pointee else { return nil }
        return Unmanaged<SwiftFunctionBoxCounter>.fromOpaque(p).takeUnretainedValue()
    }

    /// Stores this counter in `L`'s extra space (before any coroutine exists: they copy it).
    func install(in L: OpaquePointer) {
        luamp_extraspace(L).pointee = Unmanaged.passUnretained(self).toOpaque()
    }
}

/// Runs a boxed Swift function for the trampoline. Never lets a Swift error or a Lua error
/// cross: a thrown error becomes a value on the stack plus a LUAMP_* code, and the C trampoline
/// raises it after this frame has returned.
private func dispatchSwiftFunction(
    _ L: OpaquePointer?, _ box: UnsafeMutableRawPointer?, _ argn: UnsafeMutablePointer<Int32>?
) -> Int32 {
    let fn = Unmanaged<SwiftFunctionBox>.fromOpaque(box!).takeUnretainedValue()
    return callForLua(LuaStack(L!), argn, fn.function)
}

/// Runs `body` for a C caller and returns its result count, or, when it throws, pushes the
/// error value and returns a LUAMP_* code (argument errors also set `argn`). The C side then
/// raises with `luamp_complete_swift_call`, after this frame has returned.
@inline(__always)
func callForLua(_ stack: LuaStack, _ argn: UnsafeMutablePointer<Int32>?, _ body: (LuaStack) throws -> Int32) -> Int32 {
    do {
        return try body(stack)
    } catch LuaError.memory {
        // Lua's own memory error, raised by the trampoline (nothing to push: no memory).
        return Int32(LUAMP_MEMERR)
    } catch let e as LuaArgumentError {
        stack.push(e.message)
        argn!.pointee = e.index
        return Int32(LUAMP_ARGERROR)
    } catch let e as any LuaValueError where e.isMemoryError {
        return Int32(LUAMP_MEMERR)
    } catch let e as any LuaValueError {
        e.pushError(onto: stack)
        return Int32(LUAMP_RAISE)
    } catch let e as LuaError {
        stack.push(e.message)
        return Int32(LUAMP_RAISE)
    } catch {
        stack.push(String(describing: error))
        return Int32(LUAMP_RAISE)
    }
}

private func releaseSwiftFunction(_ box: UnsafeMutableRawPointer?) {
    let b = Unmanaged<SwiftFunctionBox>.fromOpaque(box!)
    b.takeUnretainedValue().counter?.live -= 1
    b.release()
}

/// Installs the trampoline's entry points; evaluated once, before the first Swift function is pushed.
private let dispatchInstalled: Void = {
    luamp_install_dispatch(dispatchSwiftFunction, releaseSwiftFunction)
}()

extension LuaStack {
    /// Pushes a Lua function that calls `fn`. The `nup` values on top of the stack become its
    /// upvalues 2...nup+1 (upvalue 1 is the box). Stack: [-nup, +1].
    func pushFunction(name: String, upvalues nup: Int32 = 0, _ fn: @escaping SwiftFunction) {
        _ = dispatchInstalled
        let counter = SwiftFunctionBoxCounter.of(L)
        let box = Unmanaged.passRetained(SwiftFunctionBox(name: name, function: fn, counter: counter)).toOpaque()
        counter?.live += 1
        luamp_push_swift_function(L, box, nup)
    }

    /// Index of upvalue `n` of the running Swift function (1 is the box, 2... the extra ones).
    func upvalueIndex(_ n: Int32) -> Int32 { luamp_upvalueindex(n) }

    /// For an `__index` function whose upvalue `n` (`upvalueIndex`) is its methods table: pushes
    /// `methods[stack[key]]` (raw; nil if absent) and returns 1. Stack: [-0, +1].
    func pushMethod(fromUpvalue n: Int32, key: Int32) -> Int32 {
        pushValue(key)
        lua_rawget(L, upvalueIndex(n))
        return 1
    }
}
