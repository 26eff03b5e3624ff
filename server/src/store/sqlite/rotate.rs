//! The transactions that start a family (login) and rotate it (refresh): each one
//! `BEGIN IMMEDIATE` transaction, the policy decided by [`classify`] on the rows it read.

use rusqlite::{params, Connection, OptionalExtension};

use super::{to_i64, to_u64, user_from_row};
use crate::refresh::{
    classify, new_family_key, replay_reason, Presented, RefreshToken, TokenFacts, TokenHash,
};
use crate::store::{
    AccessGrant, GrantRequest, Issued, Refreshed, Refused, Result, Started, Step, StoreError, User,
    MAX_CHAIN,
};

/// Starts a new family for `user` and revokes the families of `previous` cookies
/// (session fixation: a login never continues a session it was handed), in `tx`.
pub(super) fn start_family(
    tx: &Connection,
    user: User,
    previous: &[TokenHash],
    step: &Step<'_>,
) -> Result<Started> {
    let (now, rules, grant) = (step.now, step.rules, &step.grant);
    let mut revoked = Vec::new();
    for hash in previous {
        let family: Option<String> = tx
            .query_row(
                "SELECT family_id FROM refresh_tokens WHERE hash = ?1",
                [&hash[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(family) = family {
            let changed = tx.execute(
                "UPDATE families SET revoked_at = ?1, revoked_reason = 'login'
                     WHERE id = ?2 AND revoked_at IS NULL",
                params![to_i64(now), family],
            )?;
            if changed > 0 {
                revoked.push(family);
            }
        }
    }
    let family_id = crate::refresh::random_id();
    let key = new_family_key();
    let token = RefreshToken::generate();
    let session_ends_at = now.saturating_add(rules.max_age);
    let expires_at = rules.token_expiry(now, session_ends_at);
    tx.execute(
        "INSERT INTO families (id, user_id, successor_key, created_at, expires_at, access_exp_max,
                                   session_expires_at, dpop_bound)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            family_id,
            user.id,
            &key[..],
            to_i64(now),
            to_i64(expires_at),
            to_i64(grant.exp),
            to_i64(session_ends_at),
            step.dpop,
        ],
    )?;
    tx.execute(
            "INSERT INTO refresh_tokens (hash, family_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![&token.hash()[..], family_id, to_i64(now), to_i64(expires_at)],
        )?;
    let grant = record_grant(tx, grant)?;
    let issued = Issued::first(token, expires_at, family_id, user, grant);
    Ok((issued, revoked))
}

/// Presents a refresh token: rotates it, answers a grace-window replay with the current
/// token, or refuses it (revoking the family on a late replay), in `tx`.
pub(super) fn rotate(
    tx: &Connection,
    presented: &RefreshToken,
    step: &Step<'_>,
) -> Result<Refreshed> {
    let Step {
        now,
        rules,
        grant,
        dpop,
    } = step;
    let now = *now;
    let Some(row) = token_row(tx, &presented.hash())? else {
        return Ok(Err(Refused::Unknown));
    };
    let family: (i64, Vec<u8>, Option<i64>, i64, bool) = tx.query_row(
        "SELECT user_id, successor_key, revoked_at,
                    COALESCE(session_expires_at, created_at + ?2), dpop_bound
             FROM families WHERE id = ?1",
        params![&row.family_id, to_i64(rules.max_age)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let (user_id, family_key, revoked_at, session_ends_at, dpop_bound) = family;
    let session_ends_at = to_u64(session_ends_at);
    let facts = TokenFacts {
        expires_at: row.expires_at,
        rotated_at: row.rotated_at,
        grace_replays: row.grace_replays,
        family_revoked: revoked_at.is_some(),
        session_ends_at,
        dpop_bound,
    };
    let issued = match classify(&facts, now, rules, *dpop) {
        Presented::ProofMissing => return Ok(Err(Refused::ProofMissing)),
        Presented::FamilyRevoked => return Ok(Err(Refused::Revoked)),
        Presented::Expired => return Ok(Err(Refused::Expired)),
        Presented::SessionEnded => return Ok(Err(Refused::SessionEnded)),
        Presented::Replayed => {
            let reason = replay_reason(&facts, now, rules);
            tx.execute(
                "UPDATE families SET revoked_at = ?1, revoked_reason = ?3 WHERE id = ?2",
                params![to_i64(now), row.family_id, reason],
            )?;
            return Ok(Err(Refused::ReuseDetected {
                family_id: row.family_id,
            }));
        }
        Presented::Current => {
            let next = presented.successor(&family_key);
            let expires_at = rules.token_expiry(now, session_ends_at);
            tx.execute(
                "UPDATE refresh_tokens SET rotated_at = ?1 WHERE hash = ?2",
                params![to_i64(now), &presented.hash()[..]],
            )?;
            tx.execute(
                    "INSERT INTO refresh_tokens (hash, family_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![&next.hash()[..], row.family_id, to_i64(now), to_i64(expires_at)],
                )?;
            tx.execute(
                "UPDATE families SET expires_at = MAX(expires_at, ?1) WHERE id = ?2",
                params![to_i64(expires_at), row.family_id],
            )?;
            (next, expires_at, false)
        }
        Presented::RotatedWithinGrace => {
            // Walk the chain to the current token. It is the one the winner of the race
            // (or the lost response) already received, so every racer ends up with it.
            let mut candidate = presented.successor(&family_key);
            let mut found = None;
            for _ in 0..MAX_CHAIN {
                match token_row(tx, &candidate.hash())? {
                    Some(r) if r.family_id == row.family_id && r.rotated_at.is_none() => {
                        found = Some(r.expires_at);
                        break;
                    }
                    Some(r) if r.family_id == row.family_id => {
                        candidate = candidate.successor(&family_key);
                    }
                    _ => break,
                }
            }
            match found {
                Some(expires_at) if expires_at > now => {
                    // Counted only when it hands something out.
                    tx.execute(
                        "UPDATE refresh_tokens SET grace_replays = grace_replays + 1
                             WHERE hash = ?1",
                        [&presented.hash()[..]],
                    )?;
                    (candidate, expires_at, true)
                }
                // No current token reachable (deleted or expired): refuse, but a failed
                // lookup is not evidence of theft, so nothing is revoked.
                _ => return Ok(Err(Refused::Unknown)),
            }
        }
    };
    let user = tx.query_row(
        "SELECT id, username, password_hash, name, roles FROM users WHERE id = ?1",
        [user_id],
        user_from_row,
    )?;
    // With a proof, the family is bound from now on (monotonic).
    tx.execute(
        "UPDATE families SET access_exp_max = MAX(access_exp_max, ?1),
                                 dpop_bound = MAX(dpop_bound, ?3)
             WHERE id = ?2",
        params![to_i64(grant.exp), row.family_id, *dpop],
    )?;
    let grant = record_grant(tx, grant)?;
    let (token, expires_at, grace_replay) = issued;
    Ok(Ok(Issued {
        token,
        expires_at,
        family_id: row.family_id,
        user,
        grace_replay,
        grant,
    }))
}

pub(super) struct TokenRow {
    pub(super) family_id: String,
    expires_at: u64,
    pub(super) rotated_at: Option<u64>,
    grace_replays: u32,
}

pub(super) fn token_row(conn: &Connection, hash: &TokenHash) -> Result<Option<TokenRow>> {
    Ok(conn
        .query_row(
            "SELECT family_id, expires_at, rotated_at, grace_replays
             FROM refresh_tokens WHERE hash = ?1",
            [&hash[..]],
            |r| {
                Ok(TokenRow {
                    family_id: r.get(0)?,
                    expires_at: to_u64(r.get(1)?),
                    rotated_at: r.get::<_, Option<i64>>(2)?.map(to_u64),
                    grace_replays: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                })
            },
        )
        .optional()?)
}

/// Chooses the signing key and records its use, inside the caller's transaction.
fn record_grant(conn: &Connection, request: &GrantRequest<'_>) -> Result<AccessGrant> {
    let kid: String = conn
        .query_row(
            "SELECT kid FROM signing_keys WHERE retired_at IS NULL
             ORDER BY created_at DESC, kid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(StoreError::Inconsistent("no current signing key"))?;
    conn.execute(
        "UPDATE signing_keys SET last_exp = MAX(last_exp, ?1) WHERE kid = ?2",
        params![to_i64(request.exp), kid],
    )?;
    request.pinned(kid)
}
