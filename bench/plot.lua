-- wrk script for bench/plot.sh: POSTs pre-made signing requests, a different one (a
-- different key) each time in turn, so no key piles up thousands of certificates.
--   BODIES  a file of JSON bodies, one a line
--   TOKEN   optional; sent as "Authorization: Bearer TOKEN" (kubeca)
-- done() prints one machine-readable RESULT line.
local bodies = {}
local path = os.getenv("BODIES")
assert(path, "BODIES is not set")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end
local headers = {["Content-Type"] = "application/json"}
local token = os.getenv("TOKEN")
if token ~= nil and token ~= "" then headers["Authorization"] = "Bearer " .. token end
local i = 0

function setup(thread)
  thread:set("i", math.random(#bodies))
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
    "p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
