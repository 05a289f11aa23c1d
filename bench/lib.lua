-- What the benches share: medians, and one results file per bench,
-- bench/results/NAME.lua (kept in git), that bench/report.lua gathers
-- into bench/results.json.  A bench run alone replaces only its own file,
-- so one bench can be measured again without the rest.
--
-- A result is a table:
--   { bench = "boot", title = "...", runs = 10, note = "...",
--     rows = { { what = "vmlua (uml backend)", value = 1.23, unit = "s" }, ... },
--     ratios = { { what = "vmlua / qemu microvm tcg", value = 0.71 }, ... } }
-- Each value is a median of `runs`; each ratio is of two medians taken
-- in the same run.
local M = {}

M.DIR = os.getenv("BENCH_OUT") or "bench/results"

function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function serialize(v, indent)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v)
  elseif t == "string" then
    return string.format("%q", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local inner, parts = indent .. "  ", {}
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    -- A list's items keep their order (they are written without keys:
    -- "10" sorted before "2" reordered lists of ten or more); named
    -- keys follow, sorted, so two results diff cleanly.
    table.sort(keys, function(a, b)
      local na, nb = math.type(a) == "integer", math.type(b) == "integer"
      if na ~= nb then return na end
      if na then return a < b end
      return tostring(a) < tostring(b)
    end)
    for _, k in ipairs(keys) do
      local key = math.type(k) == "integer" and "" or ("[%q] = "):format(k)
      parts[#parts + 1] = inner .. key .. serialize(v[k], inner)
    end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  end
  error("cannot save a " .. t)
end

local function fmt(v)
  if math.type(v) == "integer" then return tostring(v) end
  if math.abs(v) >= 100 then return ("%.0f"):format(v) end
  if math.abs(v) >= 10 then return ("%.1f"):format(v) end
  return ("%.3g"):format(v)
end
M.fmt = fmt

--- Print one result as a small table.
function M.print(result, out)
  out = out or io.stdout
  local runs = result.runs or 1
  out:write(("\n%s (medians of %d runs%s)\n"):format(result.title or result.bench, runs,
    runs < 5 and "; make bench takes at least 5" or ""))
  for _, r in ipairs(result.rows or {}) do
    out:write(("  %-48s %10s %s\n"):format(r.what, fmt(r.value), r.unit or ""))
  end
  for _, r in ipairs(result.ratios or {}) do
    out:write(("  %-48s %10sx\n"):format(r.what, ("%.2f"):format(r.value)))
  end
  if result.note then out:write("  (" .. result.note .. ")\n") end
end

--- Save one bench's result where report.lua finds it.
function M.save(result)
  assert(type(result.bench) == "string", "a result needs its bench name")
  result.date = result.date or os.date("!%Y-%m-%dT%H:%M:%SZ")
  os.execute("mkdir -p " .. M.DIR)
  local f = assert(io.open(M.DIR .. "/" .. result.bench .. ".lua", "w"))
  f:write("return ", serialize(result, ""), "\n")
  f:close()
end

return M
