-- wrk script: POST pre-signed messages, each at most once.
-- Usage: wrk -t T -c C -d D --latency -s post.lua URL -- MESSAGES_FILE T [cycle]
-- Thread i of T sends lines i, i+T, i+2T, ... of the file; when its share runs
-- out the thread stops, so no message is sent twice. With `cycle` (for a server
-- that does not care about repeats) a thread starts over at its first line.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/jose"

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local count = tonumber(args[2])
  messages = {}
  local i = 0
  for line in io.lines(file) do
    if i % count == id then
      messages[#messages + 1] = line
    end
    i = i + 1
  end
  cycle = args[3] == "cycle"
  nxt = 1
  created = 0
  other = 0
  exhausted = 0
end

function request()
  local body = messages[nxt]
  if body == nil and cycle then
    nxt = 1
    body = messages[nxt]
  end
  if body == nil then
    exhausted = 1
    wrk.thread:stop()
    body = messages[#messages]
  else
    nxt = nxt + 1
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local c, o, e, sent = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
    e = e + t:get("exhausted")
    sent = sent + t:get("nxt") - 1
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"duration_us":%d,"requests":%d,"created":%d,"other":%d,"sent":%d,' ..
    '"exhausted_threads":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"timeouts":%d,"status_errors":%d}\n',
    summary.duration, summary.requests, c, o, sent, e,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
