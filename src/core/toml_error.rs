//! TOML errors in the terms of the file's author. serde says
//! "invalid value: integer `-5`, expected u32"; a person wrote
//! `rounds = -5` and needs "rounds must be a positive whole number, got -5".
//! Every TOML format negotium reads (scenarios, tournaments, training and
//! cluster configs, inline strategy tables) goes through [`explain`].
//!
//! The rewording works on serde's message text (its `Unexpected` and
//! `expected` halves), which is stable across serde 1.x; a message it does
//! not recognise is passed on unchanged, so at worst the old wording shows.

/// Where the error is (a byte offset into the text, when toml knows one)
/// and what is wrong, reworded where serde's wording is internal.
/// `positive`: keys of this format whose whole numbers must be at least 1
/// (`rounds`, `repetitions`): their errors say "positive".
pub fn explain(text: &str, e: &toml::de::Error, positive: &[&str]) -> (Option<usize>, String) {
    let offset = e.span().map(|s| s.start);
    let key = offset.and_then(|o| key_before(text, o));
    let message = reword(e.message(), key.as_deref(), positive).unwrap_or_else(|| e.message().to_string());
    (offset, message)
}

/// [`explain`] as one line: `line L, column C: message` (for formats
/// whose errors are plain strings).
pub fn explain_line(text: &str, e: &toml::de::Error, positive: &[&str]) -> String {
    let (offset, message) = explain(text, e, positive);
    match offset {
        Some(o) => {
            let (line, column) = line_column(text, o);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of byte offset `o`.
pub fn line_column(text: &str, o: usize) -> (usize, usize) {
    let o = floor_char_boundary(text, o);
    let before = &text[..o];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut o: usize) -> usize {
    o = o.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// The key a value at `offset` is assigned to: `rounds` in `rounds = -5`,
/// `e` in `{ type = "linear", e = "x" }`, `protocol.rounds` for a dotted key.
fn key_before(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |k| k + 1);
    let before = text[line_start..offset].trim_end();
    let before = before.strip_suffix('=')?.trim_end();
    let start = before.rfind(['{', ',', '[']).map_or(0, |k| k + 1);
    let key = before[start..].trim().replace(['"', '\''], "");
    (!key.is_empty() && !key.contains(char::is_whitespace)).then_some(key)
}

/// serde's "invalid value/type: <got>, expected <want>" in plain words.
fn reword(message: &str, key: Option<&str>, positive: &[&str]) -> Option<String> {
    let rest = message.strip_prefix("invalid value: ").or_else(|| message.strip_prefix("invalid type: "))?;
    let (got, want) = rest.rsplit_once(", expected ")?;
    let got = shown(got);
    let subject = key.unwrap_or("this value");
    let leaf = key.and_then(|k| k.rsplit('.').next()).unwrap_or("");
    let must = match want {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            let max = unsigned_max(want);
            let negative = got.starts_with('-');
            let whole = got.parse::<i128>().is_ok();
            if positive.contains(&leaf) {
                if whole && !negative {
                    format!("a positive whole number up to {max}")
                } else {
                    "a positive whole number".to_string()
                }
            } else if negative {
                "a whole number, 0 or more".to_string()
            } else if whole {
                format!("a whole number from 0 to {max}")
            } else {
                "a whole number".to_string()
            }
        }
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a string" | "a borrowed string" => "text in quotes".to_string(),
        _ => return None,
    };
    Some(format!("{subject} must be {must}, got {got}"))
}

/// serde's description of what was found, as the value is written in TOML:
/// "integer `-5`" → `-5`, "string \"x\"" → `"x"`.
fn shown(got: &str) -> String {
    if let Some(s) = got.strip_prefix("string ") {
        return s.to_string();
    }
    match (got.find('`'), got.rfind('`')) {
        (Some(a), Some(b)) if b > a => got[a + 1..b].to_string(),
        // "map", "sequence", "unit value": a table, an array...
        _ => match got {
            "map" => "a table".to_string(),
            "sequence" => "an array".to_string(),
            other => other.to_string(),
        },
    }
}

fn unsigned_max(ty: &str) -> String {
    match ty {
        "u8" => u8::MAX.to_string(),
        "u16" => u16::MAX.to_string(),
        "u32" => u32::MAX.to_string(),
        "u128" => u128::MAX.to_string(),
        // TOML integers are i64: a u64 or usize field takes up to i64::MAX.
        _ => i64::MAX.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        rounds: Option<u32>,
        seed: Option<u64>,
        e: Option<f64>,
        flag: Option<bool>,
        name: Option<String>,
    }

    fn said(text: &str) -> String {
        let e = toml::from_str::<T>(text).unwrap_err();
        explain_line(text, &e, &["rounds"])
    }

    #[test]
    fn numbers_are_described_not_typed() {
        assert_eq!(said("rounds = -5"), "line 1, column 10: rounds must be a positive whole number, got -5");
        assert_eq!(said("rounds = 1.5"), "line 1, column 10: rounds must be a positive whole number, got 1.5");
        assert_eq!(
            said("rounds = 5000000000"),
            "line 1, column 10: rounds must be a positive whole number up to 4294967295, got 5000000000"
        );
        assert_eq!(said("\nseed = -1"), "line 2, column 8: seed must be a whole number, 0 or more, got -1");
        assert_eq!(said("seed = \"x\""), "line 1, column 8: seed must be a whole number, got \"x\"");
        assert_eq!(said("e = true"), "line 1, column 5: e must be a number, got true");
        assert_eq!(said("flag = 1"), "line 1, column 8: flag must be true or false, got 1");
        assert_eq!(said("name = 3"), "line 1, column 8: name must be text in quotes, got 3");
    }

    #[test]
    fn keys_in_inline_tables_and_unknown_messages_pass() {
        assert_eq!(key_before("v = { a = 1, e = x", 17).as_deref(), Some("e"));
        assert_eq!(key_before("protocol.rounds = -5", 18).as_deref(), Some("protocol.rounds"));
        assert_eq!(key_before("xs = [1, -2]", 9), None);
        let e = toml::from_str::<T>("what = 1").unwrap_err();
        assert_eq!(explain("what = 1", &e, &[]).1, e.message());
    }
}
