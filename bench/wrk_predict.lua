-- wrk script: POST the prediction body of bench/results/serve_body.json (100 rows)
-- to /v1/models/NAME:predict; NAME from the environment (WRK_MODEL, default m).
local f = assert(io.open(os.getenv("WRK_BODY") or "bench/results/serve_body.json", "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = "/v1/models/" .. (os.getenv("WRK_MODEL") or "m") .. ":predict"
wrk.headers["Content-Type"] = "application/json"
