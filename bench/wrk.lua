-- wrk script for the notesd bench (bench/run.py). One file for every
-- scenario; the environment says what to send:
--   BENCH_MODE     get (GET PATH/<id> for each id in BENCH_IDS, in turn),
--                  post (POST PATH with a note body), login (POST PATH with
--                  the bench user's credentials), plain (GET PATH)
--   BENCH_PATH     request path (prefix for get)
--   BENCH_TOKEN    bearer token (optional)
--   BENCH_TOKENS   file with one bearer token per line (post: each in turn,
--                  so the notes spread over accounts within their caps)
--   BENCH_IDS      file with one note id per line (get)
--   BENCH_USER, BENCH_PASSWORD   (login)
--   BENCH_CLOSE    1: send Connection: close (one request per connection)
--   BENCH_OUT      where done() writes the summary as one JSON line
local mode = os.getenv("BENCH_MODE") or "plain"
local path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN") or ""
local close = os.getenv("BENCH_CLOSE") == "1"
local out = os.getenv("BENCH_OUT")

local reqs = {}
local i = 0

local function headers()
   local h = {}
   if token ~= "" then h["Authorization"] = "Bearer " .. token end
   if close then h["Connection"] = "close" end
   return h
end

local function json_str(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function init(args)
   if mode == "get" then
      for id in io.lines(os.getenv("BENCH_IDS")) do
         reqs[#reqs + 1] = wrk.format("GET", path .. id, headers())
      end
   elseif mode == "post" then
      local body = '{"title":"bench post","content":"' .. string.rep("p", 120) .. '"}'
      local list = os.getenv("BENCH_TOKENS")
      local tokens = {}
      if list then
         for t in io.lines(list) do tokens[#tokens + 1] = t end
      else
         tokens[1] = token
      end
      for _, t in ipairs(tokens) do
         local h = headers()
         if t ~= "" then h["Authorization"] = "Bearer " .. t end
         h["Content-Type"] = "application/json"
         reqs[#reqs + 1] = wrk.format("POST", path, h, body)
      end
   elseif mode == "login" then
      local h = headers()
      h["Content-Type"] = "application/json"
      reqs[1] = wrk.format("POST", path, h,
         '{"username":' .. json_str(os.getenv("BENCH_USER") or "") ..
         ',"password":' .. json_str(os.getenv("BENCH_PASSWORD") or "") .. '}')
   else
      reqs[1] = wrk.format("GET", path, headers())
   end
   -- Threads start at different ids so they do not walk in step.
   i = (math.random(#reqs) - 1)
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end

function done(summary, latency, requests)
   if not out then return end
   local e = summary.errors
   local f = assert(io.open(out, "w"))
   f:write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "err_connect": %d, ' ..
      '"err_read": %d, "err_write": %d, "err_status": %d, "err_timeout": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read,
      e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.mean, latency.max))
   f:close()
end
