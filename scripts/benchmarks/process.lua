-- process: 500 sequential start+join of a no-op target (luamp; compare process.py and process.c).
local N = 500
local function noop() end
collectgarbage()
local t0 = mp.monotonic()
for _ = 1, N do
  local p = mp.Process(noop)
  p:start()
  p:join()
end
print("process_start_join_500 " .. (mp.monotonic() - t0))
