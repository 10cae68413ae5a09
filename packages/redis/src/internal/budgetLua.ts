/**
 * The budget store's Lua scripts. Each operation is ONE script, so Redis runs
 * it atomically: concurrent calls from any number of processes see each
 * other's reservations.
 *
 * Keys of one scope (`P` the prefix, `K` the budget key):
 * - `P b:r:K` hash: `w` window id, `s` spent, `r` reserved, `c` closed, `f` soft limit fired
 * - `P b:h:K` hash: reservation id → amount held
 * - `P b:e:K` sorted set: reservation id → expiry (Redis clock, ms)
 * - `P b:x:K` sorted set: reclaimed reservation id → when (kept a day, so a late settle still charges)
 * - `P b:ledger` stream: every reclaimed reservation and late settle (capped)
 * - `P b:d:ID` string: a charge made while Redis was unreachable, already reconciled
 *
 * Time: windows are explicit ids chosen by the caller; expiries are on the
 * Redis clock (`TIME`) only, so no two clocks are ever compared.
 *
 * @internal
 */
import { BudgetStore } from "@switchboard/core"
import { Redis } from "effect/persistence"

const prelude = `
local function num(v) if v then return tonumber(v) or 0 end return 0 end
local function fmt(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'w', 's', 'r', 'c', 'f')
local w = rec[1]
local spent = num(rec[2])
local reserved = num(rec[3])
local closed = rec[4] == '1'
local soft = rec[5] == '1'
local reclaimedUsd = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #expired do
  local id = expired[i]
  local a = num(redis.call('HGET', KEYS[2], id))
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZADD', KEYS[4], now, id)
  reclaimedUsd = reclaimedUsd + a
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'op', 'reclaimed', 'key', ARGV[1], 'reservation', id, 'usd', fmt(a), 'at', now)
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 86400000)
end
if redis.call('HLEN', KEYS[2]) == 0 then reserved = 0 else reserved = math.max(0, reserved - reclaimedUsd) end
local wid = ARGV[2]
if w ~= wid then
  local a = tonumber(w or '')
  local b = tonumber(wid)
  if (not w) or (not a) or (not b) or b > a then
    w = wid
    spent = 0
    closed = false
    soft = false
  end
end
local function save(ttl)
  redis.call('HSET', KEYS[1], 'w', w, 's', fmt(spent), 'r', fmt(reserved), 'c', closed and '1' or '0', 'f', soft and '1' or '0')
  redis.call('PEXPIRE', KEYS[1], ttl)
  if redis.call('HLEN', KEYS[2]) > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], 86400000) end
end
`

/** Arguments common to every script: the scope's keys and the window. */
export interface ScopeKeys {
  readonly record: string
  readonly held: string
  readonly expiries: string
  readonly reclaimed: string
  readonly ledger: string
}

const keys = (k: ScopeKeys) => [k.record, k.held, k.expiries, k.reclaimed, k.ledger]

/**
 * Reserve: `[reserved 0|1, spent, reserved, closed 0|1, reclaimedUsd]`.
 *
 * @internal
 */
export const reserve = Redis.script(
  (
    k: ScopeKeys,
    label: string,
    windowId: string,
    id: string,
    amount: number,
    limit: number,
    ttlMs: number,
    keyTtlMs: number
  ) => [...keys(k), label, windowId, id, amount, limit, Math.max(1, Math.ceil(ttlMs)), Math.ceil(keyTtlMs)],
  {
    numberOfKeys: 5,
    lua: prelude + `
local id = ARGV[3]
local amount = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local ok = 0
if (not closed) and not (spent + reserved + amount > limit) then
  ok = 1
  reserved = reserved + amount
  redis.call('HSET', KEYS[2], id, fmt(amount))
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), id)
end
save(math.max(tonumber(ARGV[7]), 2 * tonumber(ARGV[6])))
return { ok, fmt(spent), fmt(reserved), closed and 1 or 0, fmt(reclaimedUsd) }
`
  }
).withReturnType<[number, string, string, number, string]>()

/**
 * Settle: `[spent, reserved, closed, heldUsd, chargedUsd, overrun, softCrossed, reclaimedUsd, closes]`.
 * An overrun beyond `BudgetStore.overrunFactor` times what was held closes the window.
 *
 * A reservation still held is settled; one reclaimed (its owner was too
 * slow) is charged anyway (spend is never lost) and noted in the ledger; an
 * id settled already charges nothing (a retried settle cannot double-spend).
 * An empty id is a charge without a reservation; with a dedupe key it is
 * applied once.
 *
 * @internal
 */
export const settle = Redis.script(
  (
    k: ScopeKeys,
    done: string,
    label: string,
    windowId: string,
    id: string,
    cost: number,
    softAt: number | undefined,
    keyTtlMs: number,
    dedupe: boolean
  ) => [
    ...keys(k),
    done,
    label,
    windowId,
    id,
    cost,
    softAt === undefined ? "" : softAt,
    Math.ceil(keyTtlMs),
    dedupe ? "1" : "0"
  ],
  {
    numberOfKeys: 6,
    lua: prelude + `
local id = ARGV[3]
local cost = tonumber(ARGV[4]) or 0
if not (cost > 0) then cost = 0 end
if cost == math.huge then cost = 1.7976931348623157e308 end
local heldUsd = 0
local charge = cost
local known = false
if id ~= '' then
  local h = redis.call('HGET', KEYS[2], id)
  if h then
    known = true
    heldUsd = tonumber(h)
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    if redis.call('HLEN', KEYS[2]) == 0 then reserved = 0 else reserved = math.max(0, reserved - heldUsd) end
  elseif redis.call('ZREM', KEYS[4], id) == 1 then
    if cost > 0 then
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'op', 'late-settle', 'key', ARGV[1], 'reservation', id, 'usd', fmt(cost), 'at', now)
    end
  else
    charge = 0
  end
elseif ARGV[7] == '1' then
  if redis.call('SET', KEYS[6], '1', 'NX', 'PX', 86400000) == false then charge = 0 end
end
spent = spent + charge
local overrun = known and charge > heldUsd * (1 + 1e-9) + 1e-15
local closes = overrun and charge > heldUsd * ${BudgetStore.overrunFactor} + 1e-12
if closes then closed = true end
local softCrossed = false
if ARGV[5] ~= '' and (not soft) and charge > 0 and spent >= tonumber(ARGV[5]) then
  softCrossed = true
  soft = true
end
save(tonumber(ARGV[6]))
return { fmt(spent), fmt(reserved), closed and 1 or 0, fmt(heldUsd), fmt(charge), overrun and 1 or 0, softCrossed and 1 or 0, fmt(reclaimedUsd), closes and 1 or 0 }
`
  }
).withReturnType<[string, string, number, string, string, number, number, string, number]>()

/**
 * Release: gives a held reservation back unspent. `[spent, reserved, closed]`.
 *
 * @internal
 */
export const release = Redis.script(
  (k: ScopeKeys, label: string, windowId: string, id: string, keyTtlMs: number) => [
    ...keys(k),
    label,
    windowId,
    id,
    Math.ceil(keyTtlMs)
  ],
  {
    numberOfKeys: 5,
    lua: prelude + `
local id = ARGV[3]
local h = redis.call('HGET', KEYS[2], id)
if h then
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if redis.call('HLEN', KEYS[2]) == 0 then reserved = 0 else reserved = math.max(0, reserved - tonumber(h)) end
else
  redis.call('ZREM', KEYS[4], id)
end
save(tonumber(ARGV[4]))
return { fmt(spent), fmt(reserved), closed and 1 or 0 }
`
  }
).withReturnType<[string, string, number]>()

/**
 * Read, without writing: `[spent, reserved, closed]` of the window asked for
 * (expired reservations not counted).
 *
 * @internal
 */
export const read = Redis.script(
  (k: ScopeKeys, windowId: string) => [k.record, k.held, k.expiries, windowId],
  {
    numberOfKeys: 3,
    lua: `
local function num(v) if v then return tonumber(v) or 0 end return 0 end
local function fmt(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'w', 's', 'r', 'c')
if not rec[1] then return { '0', '0', 0 } end
local reserved = num(rec[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #expired do reserved = reserved - num(redis.call('HGET', KEYS[2], expired[i])) end
if redis.call('HLEN', KEYS[2]) == #expired then reserved = 0 end
if reserved < 0 then reserved = 0 end
local a = tonumber(rec[1])
local b = tonumber(ARGV[1])
if rec[1] == ARGV[1] or (a and b and b < a) then
  return { fmt(num(rec[2])), fmt(reserved), rec[4] == '1' and 1 or 0 }
end
return { '0', fmt(reserved), 0 }
`
  }
).withReturnType<[string, string, number]>()
