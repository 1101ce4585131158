-- wrk script for bench/ha/run.sh: POSTs pre-made signing requests, each request with the
-- next body of BODIES_FILE and the next token of TOKENS_FILE (one per line, round robin), as
-- many nodes joining would, each with a key of its own.
--   BODIES_FILE  JSON bodies ({"csr", "profile"}), one per line, each CSR with its own key
--   TOKENS_FILE  bootstrap tokens, one per line
-- done() prints one machine-readable RESULT line that run.sh parses.
local bodies = {}
local bodies_file = assert(os.getenv("BODIES_FILE"), "BODIES_FILE is not set")
for line in io.lines(bodies_file) do
  bodies[#bodies + 1] = line
end
local tokens = {}
local tokens_file = assert(os.getenv("TOKENS_FILE"), "TOKENS_FILE is not set")
for line in io.lines(tokens_file) do
  tokens[#tokens + 1] = line
end
local n = 0

request = function()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1],
  }
  return wrk.format("POST", "/v1/sign", headers, bodies[(n % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
