//! Reading and changing one refresh family: the reads a refresh classifies, and the
//! compare-and-set loop that applies the rotation policy's decision.

use std::collections::HashMap;

use super::*;
use crate::refresh::{classify, replay_reason, Presented, RefreshToken, TokenFacts, TokenHash};
use crate::store::{
    AccessGrant, GrantRequest, Issued, Refreshed, Refused, Result, Step, StoreError, MAX_CHAIN,
};

impl RedisStore {
    pub(super) fn family_of(&self, hash: &TokenHash) -> Result<Option<String>> {
        let key = index_key(hash);
        self.run(move |mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
    }

    pub(super) fn read_family(&self, fid: &str) -> Result<Option<FamilyFacts>> {
        let key = family_key(fid);
        let map: HashMap<String, Vec<u8>> = self.run(move |mut c| async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut c).await
        })?;
        if map.is_empty() {
            return Ok(None);
        }
        let user = map
            .get("user")
            .and_then(|u| String::from_utf8(u.clone()).ok())
            .ok_or(StoreError::Inconsistent("a family without a user"))?;
        Ok(Some(FamilyFacts {
            user,
            key: map.get("key").cloned().unwrap_or_default(),
            revoked: map.contains_key("rev"),
            dpop_bound: map.contains_key("dpop"),
            session_ends_at: field_u64(&map, "end")
                .ok_or(StoreError::Inconsistent("a family without an end"))?,
        }))
    }

    pub(super) fn token_entries(
        &self,
        fid: &str,
        hashes: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = hashes.iter().map(|h| token_key(fid, h)).collect();
        self.run(move |mut c| async move {
            let mut cmd = redis::cmd("MGET");
            for k in &keys {
                cmd.arg(k.as_slice());
            }
            cmd.query_async(&mut c).await
        })
    }

    pub(super) fn revoke(
        &self,
        fid: &str,
        now: u64,
        reason: &str,
        overwrite: bool,
    ) -> Result<bool> {
        let changed: i64 = self.script(
            &self.scripts.revoke,
            vec![family_key(fid).into_bytes()],
            vec![
                now.to_string().into_bytes(),
                reason.as_bytes().to_vec(),
                if overwrite {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                },
            ],
        )?;
        Ok(changed == 1)
    }

    /// Chooses the current signing key, records `exp` on it, and pins it.
    pub(super) fn grant(&self, request: &GrantRequest<'_>) -> Result<AccessGrant> {
        let (script, exp) = (self.scripts.grant.clone(), request.exp);
        let kid = self.run(move |c| grant_call(c, &script, exp))?;
        finish_grant(kid, request)
    }

    pub(super) fn set_index(
        &self,
        hash: &TokenHash,
        fid: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<()> {
        let (hash, fid, secs) = (*hash, fid.to_owned(), ttl(expires_at, now));
        self.run(move |c| index_call(c, &hash, &fid, secs))
    }

    pub(super) fn count(&self, pattern: &'static str) -> Result<usize> {
        if self.cluster {
            // SCAN walks one node; KEYS goes to every master and the client adds up their
            // answers. It blocks each node while it runs: for tests, never on a request path.
            let keys: Vec<Vec<u8>> = self.run(move |mut c| async move {
                redis::cmd("KEYS").arg(pattern).query_async(&mut c).await
            })?;
            return Ok(keys.len());
        }
        self.run(move |mut c| async move {
            let mut cursor: u64 = 0;
            let mut n = 0usize;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                n += keys.len();
                if next == 0 {
                    return Ok(n);
                }
                cursor = next;
            }
        })
    }

    /// A refresh in three round trips and two handoffs to the store's runtime when it
    /// rotates. The first handoff: the token's index, then the facts (one atomic read of
    /// the family's slot, the DPoP binding included) together with the key choice. The
    /// second: the successor's index, the compare-and-set rotation (which binds the family
    /// with a proof, and refuses to apply without one if the family was bound meanwhile)
    /// and the account together.
    pub(super) fn rotate(&self, presented: &RefreshToken, step: &Step<'_>) -> Result<Refreshed> {
        let Step {
            now,
            rules,
            ref grant,
            dpop,
        } = *step;
        let hash = presented.hash();
        let mut fid: Option<String> = None;
        for _ in 0..MAX_ATTEMPTS {
            let (grant_script, exp, known) = (self.scripts.grant.clone(), grant.exp, fid.clone());
            let read = self.run(move |c| read_step(c, known, hash, grant_script, exp))?;
            let Some((family_id, read, kid)) = read else {
                return Ok(Err(Refused::Unknown));
            };
            let fid = &*fid.insert(family_id);
            let Some((family, raw)) = parse_facts(read)? else {
                return Ok(Err(Refused::Unknown));
            };
            let entry = TokenEntry::decode(&raw)
                .ok_or(StoreError::Inconsistent("a token entry is malformed"))?;
            let facts = TokenFacts {
                expires_at: entry.expires_at,
                rotated_at: entry.rotated_at,
                grace_replays: entry.grace_replays,
                family_revoked: family.revoked,
                session_ends_at: family.session_ends_at,
                dpop_bound: family.dpop_bound,
            };
            let presented_as = classify(&facts, now, rules, dpop);
            if let Some(refused) = refusal(presented_as) {
                return Ok(Err(refused));
            }
            if presented_as == Presented::Replayed {
                let reason = replay_reason(&facts, now, rules);
                self.revoke(fid, now, reason, true)?;
                return Ok(Err(Refused::ReuseDetected {
                    family_id: fid.to_owned(),
                }));
            }
            let granted = finish_grant(kid, grant)?;
            let (token, expires_at, grace_replay, user) = if presented_as == Presented::Current {
                let next = presented.successor(&family.key);
                let expires_at = rules.token_expiry(now, family.session_ends_at);
                let rotated = TokenEntry {
                    rotated_at: Some(now),
                    ..entry
                };
                let fresh = TokenEntry {
                    expires_at,
                    rotated_at: None,
                    grace_replays: 0,
                };
                let answer = Answer {
                    fid,
                    username: &family.user,
                    presented: hash,
                    hash: next.hash(),
                    expires_at,
                };
                let applied = self.apply(
                    answer,
                    now,
                    &self.scripts.rotate,
                    vec![
                        raw.clone(),
                        rotated.encode().into_bytes(),
                        fresh.encode().into_bytes(),
                        ttl(expires_at, now).to_string().into_bytes(),
                        expires_at.to_string().into_bytes(),
                        granted.exp.to_string().into_bytes(),
                        ttl(expires_at.max(granted.exp), now)
                            .to_string()
                            .into_bytes(),
                        proof_arg(dpop),
                    ],
                )?;
                let Some(user) = applied else { continue };
                (next, expires_at, false, user)
            } else {
                // Within the grace window. The chain, computed here (the derivation key
                // never leaves this process), read in one command; the first current link
                // is the token the winner of the race already received.
                let mut chain = Vec::with_capacity(MAX_CHAIN);
                let mut candidate = presented.successor(&family.key);
                for _ in 0..MAX_CHAIN {
                    let next = candidate.successor(&family.key);
                    chain.push(candidate);
                    candidate = next;
                }
                let entries =
                    self.token_entries(fid, chain.iter().map(|t| t.hash().to_vec()).collect())?;
                let mut found = None;
                for (token, raw_entry) in chain.into_iter().zip(entries) {
                    let Some(raw_entry) = raw_entry else { break };
                    let Some(e) = TokenEntry::decode(&raw_entry) else {
                        break;
                    };
                    if e.rotated_at.is_none() {
                        found = Some((token, e, raw_entry));
                        break;
                    }
                }
                let Some((current, current_entry, current_raw)) = found else {
                    return Ok(Err(Refused::Unknown));
                };
                if current_entry.expires_at <= now {
                    return Ok(Err(Refused::Unknown));
                }
                let replayed = TokenEntry {
                    grace_replays: entry.grace_replays.saturating_add(1),
                    ..entry
                };
                // The current token's index is written again: on a cluster the rotation
                // that made it current and its index are on different nodes, and a
                // rotation whose index write failed is answered here, before that token
                // is ever presented.
                let answer = Answer {
                    fid,
                    username: &family.user,
                    presented: hash,
                    hash: current.hash(),
                    expires_at: current_entry.expires_at,
                };
                let applied = self.apply(
                    answer,
                    now,
                    &self.scripts.grace,
                    vec![
                        raw.clone(),
                        replayed.encode().into_bytes(),
                        current_raw,
                        granted.exp.to_string().into_bytes(),
                        ttl(current_entry.expires_at.max(granted.exp), now)
                            .to_string()
                            .into_bytes(),
                        proof_arg(dpop),
                    ],
                )?;
                let Some(user) = applied else { continue };
                (current, current_entry.expires_at, true, user)
            };
            return Ok(Ok(Issued {
                token,
                expires_at,
                family_id: fid.to_owned(),
                user,
                grace_replay,
                grant: granted,
            }));
        }
        Err(StoreError::Unavailable(
            "too many concurrent refreshes of one session".into(),
        ))
    }

    /// One round trip: the index of the token about to be handed out, the compare-and-set
    /// `script` (on the family, the presented token and the answer's token, with `args`)
    /// that makes it the answer, and the family's account, at the same time. The token is
    /// revealed only after all three answered. `None` if the script found the facts
    /// changed (nothing applied).
    fn apply(
        &self,
        answer: Answer<'_>,
        now: u64,
        script: &redis::Script,
        args: Vec<Vec<u8>>,
    ) -> Result<Option<User>> {
        let Answer {
            fid,
            username,
            presented,
            hash,
            expires_at,
        } = answer;
        let keys = vec![
            family_key(fid).into_bytes(),
            token_key(fid, &presented),
            token_key(fid, &hash),
        ];
        let (script, secs) = (script.clone(), ttl(expires_at, now));
        let (fid, name) = (fid.to_owned(), username.to_owned());
        let (applied, account): (i64, _) = self.run(move |c| async move {
            tokio::try_join!(
                script_call::<i64>(c.clone(), script, keys, args),
                user_call(c.clone(), &name),
                index_call(c, &hash, &fid, secs),
            )
            .map(|(applied, account, ())| (applied, account))
        })?;
        if applied != 1 {
            return Ok(None);
        }
        parse_user(username, &account)
            .map(Some)
            .ok_or(StoreError::Inconsistent("the family's account is gone"))
    }
}

/// The token a refresh step is about to hand out, and whose account receives it.
struct Answer<'a> {
    fid: &'a str,
    username: &'a str,
    /// The token presented, whose entry the step changes.
    presented: TokenHash,
    /// The token handed out.
    hash: TokenHash,
    expires_at: u64,
}

/// The refusals that need no write.
fn refusal(presented: Presented) -> Option<Refused> {
    match presented {
        Presented::ProofMissing => Some(Refused::ProofMissing),
        Presented::FamilyRevoked => Some(Refused::Revoked),
        Presented::Expired => Some(Refused::Expired),
        Presented::SessionEnded => Some(Refused::SessionEnded),
        Presented::Current | Presented::RotatedWithinGrace | Presented::Replayed => None,
    }
}
