/**
 * The store's Lua scripts: each keeps a record, its owner entry ({p}owner)
 * and the owned sets ({p}owned:{nodeId}) in step in one atomic step
 * (keys.ts has the layout). Sent with EVAL (Redis caches the compiled
 * script by its hash), so they work inside MULTI and after a Redis restart.
 */

/**
 * Write an owned record unless another node owns it now (it was taken over):
 * KEYS record, owner hash, owned set of this node; ARGV json, PXAT ms or "",
 * member, this node. Returns 1 written, 0 owned elsewhere.
 */
export const PUT_OWNED = `
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if cur and cur ~= ARGV[4] then return 0 end
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
`;

/**
 * Remove an owned record unless another node owns it now (then only this
 * node's set forgets it): KEYS record, owner hash, owned set of this node;
 * ARGV member, this node. Returns 1 deleted, 0 owned elsewhere.
 */
export const DEL_OWNED = `
local cur = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
if cur and cur ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

/**
 * Take over everything a dead node owned: KEYS its owned set, this node's,
 * owner hash, node set; ARGV dead node, this node. Moves the members it
 * still owns, deletes its set, forgets the node; returns the moved members
 * (nothing for a second claimer).
 */
export const CLAIM_NODE = `
local members = redis.call('SMEMBERS', KEYS[1])
local moved = {}
for _, m in ipairs(members) do
  local cur = redis.call('HGET', KEYS[3], m)
  if (not cur) or cur == ARGV[1] then
    redis.call('SADD', KEYS[2], m)
    redis.call('HSET', KEYS[3], m, ARGV[2])
    moved[#moved + 1] = m
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], ARGV[1])
return moved
`;

/**
 * Take over one record wherever it is owned: KEYS record, owner hash, this
 * node's owned set; ARGV member, this node, the owned-set key prefix.
 * Returns the record's JSON, or nil when it is not stored (a stale owner
 * entry is cleaned up).
 */
export const CLAIM_ONE = `
local rec = redis.call('GET', KEYS[1])
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then
  if cur then
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('SREM', ARGV[3] .. cur, ARGV[1])
  end
  return false
end
if cur ~= ARGV[2] then
  if cur then redis.call('SREM', ARGV[3] .. cur, ARGV[1]) end
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return rec
`;
