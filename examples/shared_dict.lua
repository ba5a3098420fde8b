-- shared_dict.lua: four processes count words into one mp.Dict and log into one mp.List;
-- a lock-free Value counts lines. No manager process, no lost updates.
--
-- Output: the five most frequent words with their counts, then "4 workers, 400 lines".
--
--   luamp examples/shared_dict.lua
local mp = require "mp"

local text = { "the quick brown fox", "jumps over the lazy dog", "the dog sleeps", "the fox runs" }

local counts, log = mp.Dict(), mp.List()
local lines = mp.Value("q", 0, { lock = false })

local workers = {}
for w = 1, 4 do
  workers[w] = mp.Process(function()
    for i = 1, 100 do
      for word in text[(i + w) % #text + 1]:gmatch("%a+") do counts:incr(word) end
      lines:add(1)
    end
    log:append("worker " .. w .. " done")
  end)
  workers[w]:start()
end
for _, p in ipairs(workers) do p:join() end

local words = counts:keys()
table.sort(words, function(a, b) return counts[a] > counts[b] or (counts[a] == counts[b] and a < b) end)
for i = 1, 5 do print(words[i], counts[words[i]]) end
print(#log .. " workers, " .. lines.value .. " lines")
