//! The cross-process lease and the other multi-step writes, each ONE Lua script so
//! that no other client sees a half-done step (`reference/shared-cache.md` §3):
//!
//! - `claim`: read the value; if there is none, `SET lease owner NX PX ttl`; if the
//!   lease is taken, answer its remaining time. One round trip for read + lease.
//! - `finish`: the leader's (or a lone exchanger's) write: `SET value PX ttl`, add the
//!   entry to the identity's index (whose life is stretched to the value's), PUBLISH
//!   the fill, and delete the lease only if this owner still holds it.
//! - `release`: a failed leader's compare-and-delete, with a fill message so waiters
//!   wake and one of them takes over (never a plain DEL: a lease that expired and was
//!   taken by another process is not ours to drop).
//! - `forced`: a forced exchange deletes the shared copy, publishes the eviction and
//!   takes the lease if it is free, so the others wait for the new token.
//! - `invalidate`: drops a user's entries (or one scope string's) through the index
//!   set, and publishes the eviction.

use redis::{Script, Value};

const CLAIM: &str = r"
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3, redis.call('PTTL', KEYS[2])}
";

const FINISH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
";

const FORCED: &str = r"
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
";

const INVALIDATE: &str = r"
local dropped = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if ARGV[2] == '' or string.sub(member, 1, #ARGV[2]) == ARGV[2] then
    local colon = string.find(member, ':', 1, true)
    if colon then
      dropped = dropped + redis.call('DEL', ARGV[1] .. string.sub(member, colon + 1))
    end
    redis.call('SREM', KEYS[1], member)
  end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return dropped
";

/// The scripts, hashed once (`Script::invoke_async` sends EVALSHA, EVAL on NOSCRIPT).
pub struct Scripts {
    pub claim: Script,
    pub finish: Script,
    pub release: Script,
    pub forced: Script,
    pub invalidate: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            claim: Script::new(CLAIM),
            finish: Script::new(FINISH),
            release: Script::new(RELEASE),
            forced: Script::new(FORCED),
            invalidate: Script::new(INVALIDATE),
        }
    }
}

/// What `claim` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The sealed record.
    Value(Vec<u8>),
    /// The lease is ours.
    Leader,
    /// Another owner holds the lease for this many more milliseconds.
    Held(u64),
}

impl Claimed {
    /// Reads the script's answer; `None` for anything else (counted as an error).
    pub fn parse(value: &Value) -> Option<Self> {
        let Value::Array(items) = value else {
            return None;
        };
        match items.as_slice() {
            [Value::Int(1), Value::BulkString(record)] => Some(Self::Value(record.clone())),
            [Value::Int(2)] => Some(Self::Leader),
            [Value::Int(3), Value::Int(ms)] => Some(Self::Held((*ms).max(0) as u64)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_answers_parse() {
        let array = |items| Value::Array(items);
        assert_eq!(
            Claimed::parse(&array(vec![
                Value::Int(1),
                Value::BulkString(b"r".to_vec())
            ])),
            Some(Claimed::Value(b"r".to_vec()))
        );
        assert_eq!(
            Claimed::parse(&array(vec![Value::Int(2)])),
            Some(Claimed::Leader)
        );
        assert_eq!(
            Claimed::parse(&array(vec![Value::Int(3), Value::Int(-2)])),
            Some(Claimed::Held(0))
        );
        assert_eq!(Claimed::parse(&Value::Nil), None);
        assert_eq!(Claimed::parse(&array(vec![Value::Int(4)])), None);
    }
}
