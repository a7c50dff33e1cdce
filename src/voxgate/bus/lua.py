"""The Redis bus's Lua scripts: each is one atomic step that several nodes may race for, sent
by ``ScriptRunner`` (by SHA, in the pipeline of the calls that queued with it).

Kept apart from ``bus/redis.py`` so each reads as a unit; the key layout is described there.
"""

from __future__ import annotations

__all__ = ["CALLS", "DROP", "HOLD", "KEEP", "PUBLISH", "REGISTER", "SLOT", "SWEEP", "UNREGISTER"]

# A session holds a token (its jti's hash: session id -> [node, address]). Entries of dead
# nodes are dropped; the answer is the addresses, other than ours, of the other sessions
# holding it on live nodes: token reuse when not empty. ``old``: the token the session held
# before (a refresh or a new token at a reattach), which it no longer holds. The key expires
# with the token (``at``, epoch milliseconds): after that nobody can present it again.
_HOLD_FUNCTION = """
local function hold_token(key, old, sid, node, addr, at, nodes)
  if old ~= '' and old ~= key then redis.call('HDEL', old, sid) end
  local entries = redis.call('HGETALL', key)
  local seen, rivals = {}, {}
  for i = 1, #entries, 2 do
    if entries[i] ~= sid then
      local held = cjson.decode(entries[i + 1])
      if redis.call('EXISTS', nodes .. held[1]) == 0 then
        redis.call('HDEL', key, entries[i])
      elseif held[2] ~= addr and not seen[held[2]] then
        seen[held[2]] = true
        table.insert(rivals, held[2])
      end
    end
  end
  redis.call('HSET', key, sid, cjson.encode({node, addr}))
  redis.call('PEXPIREAT', key, at)
  return table.concat(rivals, ' ')
end
"""

# Admit a registration (domain.registrations.admit, step for step): drop entries of dead nodes,
# refuse under first_wins when the cap is reached, else displace the oldest past the cap.
# Atomic, so two nodes racing for one principal both see a consistent "who was before me".
# An admitted session with a token also holds it (``hold_token``), in the same call: token
# reuse is found across nodes without another round trip per login.
# KEYS: the principal's hash, its connection's set, [the token's hash, the previous token's].
# ARGV: the registration, its session id, the principal, policy, cap, the node-key prefix,
# the node, the address, the token's expiry (epoch ms).
REGISTER = (
    _HOLD_FUNCTION
    + """
local entries = redis.call('HGETALL', KEYS[1])
local others = {}
for i = 1, #entries, 2 do
  local sid, raw = entries[i], entries[i + 1]
  if sid ~= ARGV[2] then
    local reg = cjson.decode(raw)
    if redis.call('EXISTS', ARGV[6] .. reg['node_id']) == 1 then
      table.insert(others, {sid = sid, raw = raw, at = tonumber(reg['registered_at'])})
    else
      redis.call('HDEL', KEYS[1], sid)
    end
  end
end
table.sort(others, function(x, y)
  if x.at == y.at then return x.sid < y.sid end
  return x.at < y.at
end)
local cap = math.max(1, tonumber(ARGV[5]))
if ARGV[4] == 'first_wins' and #others >= cap then
  return {'refused', '', others[1].raw}
end
local rivals = ''
if #KEYS >= 3 then
  rivals = hold_token(KEYS[3], KEYS[4] or '', ARGV[2], ARGV[7], ARGV[8], ARGV[9], ARGV[6])
end
local out = {'ok', rivals}
for i = 1, #others - cap + 1 do
  redis.call('HDEL', KEYS[1], others[i].sid)
  table.insert(out, others[i].raw)
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
return out
"""
)

# A token presented again by a registered session (a refresh): held without registering.
# KEYS: the token's hash, [the previous token's]. ARGV: session id, node, address, expiry
# (epoch ms), the node-key prefix.
HOLD = (
    _HOLD_FUNCTION
    + """
return hold_token(KEYS[1], KEYS[2] or '', ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

# Remove a session's registration; the connection's set forgets the principal with its last.
# KEYS: the principal's hash, [the token the session held: a session that ended lets go].
UNREGISTER = """
if #KEYS >= 2 then redis.call('HDEL', KEYS[2], ARGV[1]) end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', ARGV[3] .. cjson.decode(raw)['connection_id'], ARGV[2])
end
return 1
"""

# a sorted set of members scored by when they let go: the expired leave, then one more if
# there is room (or the member is there already: its time is renewed)
SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# A session's record, listed under the node that wrote it (so that a sweep finds a dead node's
# records) and the node among those with records. KEYS: the record, the node's list, the
# list of nodes. ARGV: the body, its time to live (ms), the node, the session id.
KEEP = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""
# KEYS: the record, the node's list. ARGV: the session id.
DROP = """
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# The records of every node whose heartbeat is gone: each record still written by that node
# (not adopted since by a live one) is left ``ARGV[3]`` ms to live, the time a client has to
# come back for it, then Redis drops it. KEYS: the list of nodes. ARGV: the node-key prefix,
# the prefix of the nodes' lists and of the records, the time left (ms). Returns how many.
SWEEP = """
local swept = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 0 then
    local list = ARGV[2] .. 'sessions:' .. node
    for _, sid in ipairs(redis.call('SMEMBERS', list)) do
      local key = ARGV[2] .. 'sess:' .. sid
      local raw = redis.call('GET', key)
      if raw and cjson.decode(raw)['node'] == node then
        local left = redis.call('PTTL', key)
        if left < 0 or left > tonumber(ARGV[3]) then
          redis.call('PEXPIRE', key, math.max(1, tonumber(ARGV[3])))
        end
        swept = swept + 1
      end
    end
    redis.call('DEL', list)
    redis.call('SREM', KEYS[1], node)
  end
end
return swept
"""

# The calls a session took part in, for its call reports wherever they are posted. KEYS: the
# session's hash. ARGV: time to live (ms), credential id, connection id, call ids...
CALLS = """
redis.call('HSET', KEYS[1], 'credential_id', ARGV[2], 'connection_id', ARGV[3])
for i = 4, #ARGV do redis.call('HSET', KEYS[1], 'c:' .. ARGV[i], '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# A bus event, in the pipeline of the scripts queued with it: a burst of logins that each
# displace a registration would otherwise take one pooled connection per PUBLISH, and
# redis-py's pool refuses the 101st (MaxConnectionsError) instead of waiting.
PUBLISH = """
return redis.call('PUBLISH', KEYS[1], ARGV[1])
"""
