//! Numbers on the command line, in the user's terms.
//!
//! clap takes `--repeat -1` for two flags and answers "unexpected argument
//! '-1' found; to pass '-1' as a value, use '-- -1'", and a number that
//! does not parse as "invalid digit found in string". Here every option
//! that takes a value lets a negative number through to its parser
//! ([`negatives_reach_parsers`]), counts say what they count ([`positive`]),
//! and any other number refused by its parser is said plainly
//! ([`plain`]): "--repeat must be a positive number of negotiations, got -1".

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Lets a value that looks like a negative number reach the parser of
/// every option (of `cmd` and its subcommands) that takes a value.
pub fn negatives_reach_parsers(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
    let mut cmd = cmd.mut_args(|a| if a.get_action().takes_values() { a.allow_negative_numbers(true) } else { a });
    for name in names {
        cmd = cmd.mut_subcommand(name, negatives_reach_parsers);
    }
    cmd
}

/// A parser for a count of `what` (`--repeat`, `--n`, `--episodes`): a
/// whole number, at least 1.
pub fn positive<T>(what: &'static str) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialEq + From<u8>,
{
    move |text: &str| {
        let s = text.trim();
        match s.parse::<T>() {
            Ok(n) if n != T::from(0) => Ok(n),
            _ if s.parse::<i128>().is_ok_and(|n| n > 0) => Err(format!("is too large a number of {what}, got {s}")),
            _ => Err(format!("must be a positive number of {what}, got {s}")),
        }
    }
}

/// clap's error, reworded where it is a number its parser refused. The
/// wording depends on the value alone (every numeric option of negotium is
/// unsigned), so it covers options without a parser of their own.
pub fn plain(e: clap::Error) -> clap::Error {
    if e.kind() != ErrorKind::ValueValidation {
        return e;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) =
        (e.get(ContextKind::InvalidArg), e.get(ContextKind::InvalidValue))
    else {
        return e;
    };
    // "--repeat <REPEAT>" → "--repeat".
    let flag = arg.split_whitespace().next().unwrap_or(arg).to_string();
    let value = value.trim().to_string();
    let Some(source) = std::error::Error::source(&e).map(|s| s.to_string()) else { return e };
    let said = if source.starts_with("must be ") || source.starts_with("is too large") {
        source
    } else if let Some(what) = numeric(&source) {
        match value.parse::<i128>() {
            Ok(n) if n < 0 => format!("must be {what}, 0 or more, got {value}"),
            Ok(_) => format!("is too large, got {value}"),
            Err(_) if value.parse::<f64>().is_ok() => format!("must be {what}, got {value}"),
            Err(_) => format!("must be {what}, got `{value}`"),
        }
    } else {
        return e;
    };
    clap::Error::raw(ErrorKind::ValueValidation, format!("{flag} {said}\n"))
}

/// What a std or clap number parser wanted, from its message.
fn numeric(source: &str) -> Option<&'static str> {
    const INT: [&str; 4] = [
        "invalid digit found in string",
        "number too large to fit in target type",
        "cannot parse integer from empty string",
        "number too small to fit in target type",
    ];
    if INT.contains(&source) || source.contains(" is not in ") {
        Some("a whole number")
    } else if source == "invalid float literal" {
        Some("a number")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct T {
        #[arg(long, value_parser = positive::<u64>("negotiations"))]
        repeat: Option<u64>,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        rounds: Option<u32>,
        #[arg(long)]
        timeout: Option<f64>,
    }

    fn said(args: &[&str]) -> String {
        let cmd = negatives_reach_parsers(T::command());
        let e = cmd.try_get_matches_from(std::iter::once("t").chain(args.iter().copied())).unwrap_err();
        plain(e).to_string()
    }

    #[test]
    fn numbers_are_refused_in_plain_words() {
        assert_eq!(said(&["--repeat", "-1"]), "error: --repeat must be a positive number of negotiations, got -1\n");
        assert_eq!(said(&["--repeat", "0"]), "error: --repeat must be a positive number of negotiations, got 0\n");
        assert_eq!(said(&["--repeat", "1.5"]), "error: --repeat must be a positive number of negotiations, got 1.5\n");
        assert_eq!(said(&["--seed", "-1"]), "error: --seed must be a whole number, 0 or more, got -1\n");
        assert_eq!(said(&["--seed", "ten"]), "error: --seed must be a whole number, got `ten`\n");
        assert_eq!(said(&["--rounds", "-5"]), "error: --rounds must be a whole number, 0 or more, got -5\n");
        assert_eq!(said(&["--rounds", "5000000000"]), "error: --rounds is too large, got 5000000000\n");
        assert_eq!(said(&["--timeout", "soon"]), "error: --timeout must be a number, got `soon`\n");
        // A negative float reaches its parser, and the command's own check.
        let cmd = negatives_reach_parsers(T::command());
        let m = cmd.try_get_matches_from(["t", "--timeout", "-2.5"]).unwrap();
        assert_eq!(m.get_one::<f64>("timeout"), Some(&-2.5));
    }
}
