-- process: the classic first example — run a function in another process and wait for it.
-- Python:
--   from multiprocessing import Process
--   def f(name): print('hello', name)
--   if __name__ == '__main__':
--       p = Process(target=f, args=('bob',)); p.start(); p.join()
local mp = require "mp"

local function f(name)
  print("hello " .. name)
end

local p = mp.Process{target = f, args = {"bob"}}
p:start()
p:join()
