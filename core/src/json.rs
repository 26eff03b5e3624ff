//! Strict JSON for token segments: a nesting cap checked before parsing, and objects whose
//! duplicate member names are reported instead of silently resolved.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use crate::error::{DecodeError, Part};

/// Refuses JSON nested deeper than `max` before a recursive parser sees it, so a segment of
/// ten thousand `[` costs one linear scan and no stack.
pub(crate) fn check_depth(json: &[u8], max: usize, part: Part) -> Result<(), DecodeError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(DecodeError::TooDeep { part, max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Every member of a JSON object in document order, duplicates included.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

/// Parses a segment that must be a JSON object with unique member names.
pub(crate) fn parse_object(
    json: &[u8],
    max_depth: usize,
    part: Part,
) -> Result<Map<String, Value>, DecodeError> {
    if std::str::from_utf8(json).is_err() {
        return Err(DecodeError::NotUtf8 { part: Some(part) });
    }
    check_depth(json, max_depth, part)?;
    // One pass: a non-object top level is the only *data* error the visitor can raise (members
    // are arbitrary values), everything else is a syntax error.
    let Members(members) = serde_json::from_slice(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => DecodeError::NotObject { part },
        _ => DecodeError::BadJson {
            part,
            column: e.column(),
        },
    })?;
    let mut map = Map::new();
    for (name, value) in members {
        if map.contains_key(&name) {
            let mut name = name;
            truncate_on_char_boundary(&mut name, 64);
            return Err(DecodeError::Duplicate { part, name });
        }
        map.insert(name, value);
    }
    Ok(map)
}

fn truncate_on_char_boundary(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_inside_strings_does_not_count() {
        let json = br#"{"a":"[[[[[[[[[[[[\"{{{{"}"#;
        assert!(check_depth(json, 2, Part::Claims).is_ok());
    }

    #[test]
    fn depth_over_the_cap_is_refused() {
        let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            check_depth(json.as_bytes(), 32, Part::Claims),
            Err(DecodeError::TooDeep {
                part: Part::Claims,
                max: 32
            })
        );
    }

    #[test]
    fn duplicate_member_names_are_refused() {
        let err = parse_object(br#"{"sub":"a","sub":"b"}"#, 8, Part::Claims).unwrap_err();
        assert_eq!(err.code(), "duplicate_claim");
    }

    #[test]
    fn nested_objects_keep_their_members() {
        let map = parse_object(br#"{"a":{"b":[1,2]}}"#, 8, Part::Claims).unwrap();
        assert_eq!(map["a"]["b"][1], 2);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "é".repeat(40);
        truncate_on_char_boundary(&mut s, 63);
        assert_eq!(s.len(), 62);
    }
}
