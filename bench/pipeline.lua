-- wrk script: each write carries 16 pipelined GET requests (wrk counts each response).
-- Used by bench/http.py:  wrk -t1 -c50 -d5s -s bench/pipeline.lua http://127.0.0.1:8090/

local depth = 16

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
