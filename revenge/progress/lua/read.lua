-- One consistent snapshot of a state and its device rows (two HGETALLs outside a script could see a
-- write land between them). No ARGV. Returns the JSON text of reply() (see common.lua).

return cjson.encode({redis.call('HGETALL', K_STATE), redis.call('HGETALL', K_DEVICES)})
