--- vmlua.virtio: virtio devices, including devices written in Lua.
--
--     local virtio = require "vmlua.virtio"
--     local dev = virtio.device{
--       id = virtio.ID.rng, queues = { 64 },
--       notify = function(dev, q)
--         for chain in virtio.chains(q) do
--           chain:write(string.rep("\4", chain.writable))
--           q:push(chain)
--         end
--       end,
--     }
--
-- A device is a vmlua.Device (see docs/devices-api.md); `notify` runs
-- when the driver kicks a queue, with that queue as a vmlua.Virtqueue.
-- After it returns, the driver is interrupted if it asked to be.
--
-- @module vmlua.virtio
local core = require "vmlua.core"
local console_mod = require "vmlua.console"

local M = {}

--- Device ids (virtio 1.2, section 5).  `echo` is vmlua's own test
-- device and not a registered id.
M.ID = { net = 1, block = 2, console = 3, rng = 4, echo = 0xffff }

--- Feature bit numbers.
M.F = { INDIRECT_DESC = 28, EVENT_IDX = 29, VERSION_1 = 32 }

--- Status bits.
M.STATUS = { ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8,
             NEEDS_RESET = 64, FAILED = 128 }

local hooks = { on_status = "status", on_reset = "reset", on_config = "config", on_error = "error" }

--- Iterate over the chains waiting in a queue.
function M.chains(q)
  return function() return q:pop() end
end

--- A whole virtio device from a table.
-- @tparam table spec id (number, or a name in `ID`), queues (list of
--   sizes), features (list of bit numbers), config (string), notify
--   (function(dev, q)), and optional hooks on_status(dev, new, old),
--   on_reset(dev), on_config(dev, offset), on_error(dev, reason)
-- @treturn vmlua.Device
function M.device(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'device' (table expected, got " .. type(spec) .. ")", 2)
  end
  local id = spec.id
  if type(id) == "string" then
    id = M.ID[id] or error("bad argument #1 to 'device' (unknown device name '" .. spec.id .. "')", 2)
  end
  if spec.notify ~= nil and type(spec.notify) ~= "function" then
    error("bad argument #1 to 'device' (field 'notify' must be a function)", 2)
  end
  local ok, dev = pcall(core.device, { id = id, queues = spec.queues,
    features = spec.features, config = spec.config })
  if not ok then error((dev:gsub("^bad argument #1 to '%?'", "bad argument #1 to 'device'")), 2) end
  if spec.notify then
    local notify = spec.notify
    dev:on("notify", function(d, q)
      notify(d, q)
      d:interrupt(q)
    end)
  end
  for key, event in pairs(hooks) do
    if spec[key] then dev:on(event, spec[key]) end
  end
  return dev
end

--- virtio-rng fed by the host's getrandom (in C, see core/rng.c).  Each
-- chain's writable buffers are filled, at most 1 MiB per chain; hooks
-- (`dev:on("notify", fn)`) see each kick after the device served it.
-- @tparam[opt] table opts queue (size of the queue, default 64)
-- @treturn vmlua.Device
M.rng = core.rng

--- A disk label's rules: 1 to 18 letters, digits, '.', '_' or '-', not
-- starting with '.' or '-' (a file name in /dev/disk/by-label-vmlua).
function M.valid_label(s)
  return type(s) == "string" and #s >= 1 and #s <= 18 and s:match("^[%w_][%w._-]*$") ~= nil
end

--- virtio-blk over an image file (in C, see core/blk.c, core/cow.c).
-- @tparam table opts path (the image, required), readonly (boolean),
--   cow (true: writes go to a temporary overlay; a file name: to that
--   overlay, kept and reopenable; the master is never written), serial
--   (GET_ID, at most 20 bytes; default the file's name), label (a name,
--   see valid_label: the serial becomes "L=" .. label, and the default
--   guest links /dev/disk/by-label-vmlua/LABEL to the disk), queue
--   (size, default 128)
-- @treturn[1] vmlua.Device with fields sectors, readonly, reads, writes,
--   flushes, discards, write_zeroes, errors, unsupported, bytes_read,
--   bytes_written
-- @treturn[2] nil
-- @treturn[2] string why the image cannot be used
function M.blk(...)
  local args, opts = table.pack(...), ...
  if type(opts) == "table" and opts.label ~= nil then
    if not M.valid_label(opts.label) then
      error("bad argument #1 to 'blk' (option 'label' must be 1 to 18 letters, digits, '.', '_' or '-', " ..
            "not starting with '.' or '-')", 2)
    end
    if opts.serial ~= nil then
      error("bad argument #1 to 'blk' (options 'label' and 'serial' exclude each other)", 2)
    end
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.label, o.serial = nil, "L=" .. opts.label
    args = { o, n = 1 }
  end
  local ok, dev, why = pcall(core.blk, table.unpack(args, 1, args.n))
  if not ok then
    error((dev:gsub("^bad argument #1 to '[^']*'", "bad argument #1 to 'blk'")
              :gsub("serial, queue%)%)$", "serial, label, queue))")), 2)
  end
  return dev, why
end

--- virtio-net (in C, see core/net.c, core/switch.c).
-- @tparam[opt] table opts mac ("52:54:00:xx:xx:xx", default random),
--   switch (a vmlua.Switch from vmlua.switch()), hook (function(frame,
--   direction): direction "tx" (from the guest) or "rx" (to it); return
--   nil to pass the frame, false to drop it, a string to pass that
--   instead), queue (size of each queue, default 256)
-- @treturn vmlua.Device with fields tx_frames, tx_bytes, rx_frames,
--   rx_bytes, rx_dropped, tx_dropped, hook_dropped
M.net = core.net

local console_options = { output = true, log = true, size = true, input = true }

--- The vmlua.Console of each console Device (weak keys), so that a VM
-- built with the device can drive the console's expect().
M.console_of = setmetatable({}, { __mode = "k" })

--- virtio-console (in C, see core/vcon.c): hvc0 in the guest, with a
-- vmlua.Console on the host side, the same object as `vm.console`.
-- @tparam[opt] table opts output ("stdout" (default), "none"/false, or a
--   function(data)), log (file name), size (bytes kept for
--   console:output(), default 64 KiB), input ("stdin"; a file name, whose
--   bytes the guest reads at its own pace; or a function() returning the
--   next bytes or nil, called when the guest wants more).  Input sources
--   start once the guest has first written to hvc0; `console:send(s)`
--   queues at once.
-- @treturn[1] vmlua.Device
-- @treturn[1] vmlua.Console
-- @treturn[2] nil
-- @treturn[2] string why (a log or input file that cannot be opened)
function M.console(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'console' (table expected, got " .. type(opts) .. ")", 2)
  end
  for k in pairs(opts) do
    if not console_options[k] then
      error("bad argument #1 to 'console' (unknown option '" .. tostring(k) ..
            "' (output, log, size, input))", 2)
    end
  end
  console_mod.check("console", opts)
  local input = opts.input
  if input ~= nil and type(input) ~= "string" and type(input) ~= "function" then
    error("bad argument #1 to 'console' (option 'input' must be \"stdin\", a file name or a function)", 2)
  end
  local dev, spoke
  local weak = setmetatable({}, { __mode = "v" })
  -- The console reaches its device weakly: the device's output function
  -- holds the console, and a cycle through the registry would never end.
  local function send(s)
    local d = weak[1]
    if not d then error("console:send(): its device is gone", 3) end
    return core.console_send(d, s)
  end
  local con, err = console_mod.new{ output = opts.output, log = opts.log, size = opts.size,
    send = send }
  if not con then return nil, err end
  -- An input function is asked for more when the guest posts buffers,
  -- and first when it first writes (see core/vcon.c for why not before).
  local function more(d)
    if type(input) == "function" and spoke and d.pending == 0 then
      local s = input()
      if s ~= nil then core.console_send(d, s) end
    end
  end
  dev, err = core.console_device{ output = function(data)
      con:write(data)
      if not spoke then
        spoke = true
        if weak[1] then more(weak[1]) end
      end
    end,
    input = type(input) == "string" and input or nil }
  if not dev then con:close(); return nil, err end
  weak[1] = dev
  if type(input) == "function" then
    dev:on("notify", function(d, q)
      if q == d:queue(0) then more(d) end
    end)
  end
  M.console_of[dev] = con
  return dev, con
end

return M
