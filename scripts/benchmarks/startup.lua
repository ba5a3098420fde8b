-- startup: interpreter start-up, luamp -e '' against lua5.4 -e '' (timed from inside, 20 runs each).
local function run(cmd, n)
  local t0 = mp.monotonic()
  for _ = 1, n do assert(os.execute(cmd .. " >/dev/null 2>&1")) end
  return (mp.monotonic() - t0) / n
end
local luamp = os.getenv("LUAMP")
print("startup_luamp_minus_e " .. run(luamp .. " -e ''", 20))
print("startup_lua54_minus_e " .. run("lua5.4 -e ''", 20))
