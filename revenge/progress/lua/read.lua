-- One consistent snapshot of a state and its device rows (two HGETALLs outside a script could see a
-- write land between them). No ARGV.

return {redis.call('HGETALL', K_STATE), redis.call('HGETALL', K_DEVICES)}
