-- wrk script: every request wrk sends is 16 pipelined GET / requests in one write.
-- wrk counts each response separately (it finds the 16 requests in the string).
--   wrk -t1 -c50 -d5s -s bench/http-pipeline.lua http://127.0.0.1:8080/
local depth = 16

init = function(args)
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format(nil, "/")
   end
   pipelined = table.concat(requests)
end

request = function()
   return pipelined
end
