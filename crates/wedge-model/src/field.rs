//! A value that may not have been readable, with the reason why.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a field has no value. Every gap in a snapshot carries one: a blank
/// would hide exactly the evidence wedge exists to show (a read that hung is
/// itself a finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingReason {
    /// The viewer lacks the privilege (EACCES/EPERM, or the kernel hides the
    /// content, as /proc/PID/stack does for non-root).
    PermissionDenied,
    /// The read did not finish before its deadline: the kernel blocked it.
    TimedOut,
    /// The task or file went away during the scan.
    Vanished,
    /// This kernel (or this kind of source) does not provide it.
    NotSupported,
    /// Not collected on purpose (e.g. `environ`, which holds secrets).
    NotCollected,
    /// Read, but the content could not be understood.
    Invalid,
    /// Any other I/O error.
    Error,
}

/// The reason plus a sentence naming the path or pid it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub reason: MissingReason,
    pub detail: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A value, or the reason it is missing.
///
/// In JSON a present value is written as itself and a missing one as
/// `{"missing": {"reason": "timed_out", "detail": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<T> {
    Value(T),
    Missing(Missing),
}

impl<T> Field<T> {
    pub fn missing(reason: MissingReason, detail: impl Into<String>) -> Self {
        Field::Missing(Missing {
            reason,
            detail: detail.into(),
        })
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            Field::Missing(_) => None,
        }
    }

    pub fn into_value(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            Field::Missing(_) => None,
        }
    }

    pub fn missing_info(&self) -> Option<&Missing> {
        match self {
            Field::Value(_) => None,
            Field::Missing(m) => Some(m),
        }
    }

    pub fn is_timed_out(&self) -> bool {
        matches!(self, Field::Missing(m) if m.reason == MissingReason::TimedOut)
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Value(v) => Field::Value(f(v)),
            Field::Missing(m) => Field::Missing(m),
        }
    }

    pub fn as_ref(&self) -> Field<&T> {
        match self {
            Field::Value(v) => Field::Value(v),
            Field::Missing(m) => Field::Missing(m.clone()),
        }
    }
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Field::missing(MissingReason::NotCollected, "not collected")
    }
}

#[derive(Serialize, Deserialize)]
struct MissingWrapper {
    missing: Missing,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FieldRepr<T> {
    // The wrapper is tried first: it requires the `missing` key, so a value
    // of T never parses as it.
    Missing(MissingWrapper),
    Value(T),
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(v) => v.serialize(s),
            Field::Missing(m) => MissingWrapper { missing: m.clone() }.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match FieldRepr::deserialize(d)? {
            FieldRepr::Missing(w) => Field::Missing(w.missing),
            FieldRepr::Value(v) => Field::Value(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let v: Field<Vec<String>> = Field::Value(vec!["a".into()]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a"]"#);
        let m: Field<Vec<String>> = Field::missing(
            MissingReason::TimedOut,
            "reading /proc/42/cmdline blocked > 250 ms",
        );
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains(r#""reason":"timed_out""#));
        let back: Field<Vec<String>> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
        let back: Field<Vec<String>> = serde_json::from_str(r#"["a"]"#).unwrap();
        assert_eq!(back, v);
    }
}
