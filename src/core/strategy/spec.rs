//! Strategies by name and parameters, as written in scenario files and on the
//! command line.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Map, Value as Json};
use thiserror::Error;

use super::{Acceptance, Bidding, Boa, Convention, Strategy};

/// Names `StrategySpec::build` knows.
pub const STRATEGY_NAMES: &[&str] =
    &["boulware", "linear", "conceder", "time-dependent", "hardliner", "random", "tit-for-tat", "learned"];

/// Every strategy name `StrategySpec::build` knows: the built-ins, then the
/// native agents (`core::agents`).
pub fn strategy_names() -> Vec<&'static str> {
    STRATEGY_NAMES.iter().copied().chain(crate::core::agents::AGENTS.iter().map(|a| a.name)).collect()
}

/// Builds a `learned` strategy from a model file. Core cannot link burn, so
/// the learn layer registers this once at start-up
/// (`negotium::learn::register()`); without it a learned spec is a clear
/// error rather than a silent fallback.
pub type LearnedLoader = fn(&Path) -> Result<Box<dyn Strategy>, String>;

static LEARNED_LOADER: OnceLock<LearnedLoader> = OnceLock::new();

/// Installs the loader for `{ learned = "PATH" }`; later calls are ignored.
pub fn register_learned_loader(loader: LearnedLoader) {
    let _ = LEARNED_LOADER.set(loader);
}

/// Why a session's strategies cannot play it. Also what the engines return
/// for a session that cannot be set up at all (the last two variants):
/// both are found before any party acts, and the engines' signatures name
/// this one type.
#[derive(Debug, Error, PartialEq)]
pub enum StrategyError {
    #[error("unknown strategy `{0}`; valid strategies: {valid}", valid = strategy_names().join(", "))]
    UnknownStrategy(String),
    #[error("strategy `{strategy}`: unknown parameter `{param}`; valid parameters: {valid}")]
    UnknownParameter { strategy: String, param: String, valid: String },
    #[error("strategy `{strategy}`: parameter `{param}` {problem}")]
    BadParameter { strategy: String, param: String, problem: String },
    #[error("{0}")]
    Syntax(String),
    /// A `learned` strategy's model does not load (the loader's message
    /// names the file as written).
    #[error("strategy `learned`: {0}")]
    Model(String),
    /// A Python strategy asked to run in this process: it runs in an agent
    /// host, which `negotium run` and `tournament` start.
    #[error(
        "strategy `python` ({0}) runs in a Python agent host: `negotium run` and `negotium tournament` start one; \
         elsewhere mark the party `external = true` and play it with `negotium-agents play`"
    )]
    Hosted(String),
    /// Strategies (or party endpoints) and the session's parties differ in
    /// number: each party needs exactly one.
    #[error("{strategies} strategies for {parties} parties: a session needs one for each party")]
    PartyCount { strategies: usize, parties: usize },
    /// The protocol refuses the session (too few parties, no deadline).
    #[error(transparent)]
    Protocol(#[from] crate::core::protocol::ProtocolError),
}

/// A strategy as configured: a name and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategySpec {
    pub name: String,
    pub params: Map<String, Json>,
}

impl StrategySpec {
    pub fn named(name: &str) -> Self {
        Self { name: name.to_string(), params: Map::new() }
    }

    /// From a scenario value: `"boulware"`, `{ type = "time-dependent", e = 0.5 }`,
    /// `{ learned = "models/policy" }` (a trained policy, see `learn`) or
    /// `{ python = "module:Class", params = { ... }, deadline = 1.0 }` (an
    /// agent of the Python package, or any NegMAS negotiator).
    pub fn from_json(v: &Json) -> Result<Self, StrategyError> {
        match v {
            Json::String(s) => Ok(Self::named(s)),
            Json::Object(map) if map.contains_key("python") => {
                let spec = Self { name: "python".into(), params: map.clone() };
                spec.check_python()?;
                Ok(spec)
            }
            Json::Object(map) if map.contains_key("learned") => {
                let path = map["learned"]
                    .as_str()
                    .ok_or_else(|| StrategyError::Syntax("`learned` takes the path of a model".into()))?;
                if let Some(extra) = map.keys().find(|k| *k != "learned") {
                    return Err(StrategyError::UnknownParameter {
                        strategy: "learned".into(),
                        param: extra.clone(),
                        valid: "learned".into(),
                    });
                }
                let mut params = Map::new();
                params.insert("path".into(), Json::String(path.into()));
                Ok(Self { name: "learned".into(), params })
            }
            Json::Object(map) => {
                let mut params = map.clone();
                let name = params
                    .remove("type")
                    .or_else(|| params.remove("name"))
                    .and_then(|n| n.as_str().map(str::to_string))
                    .ok_or_else(|| StrategyError::Syntax("a strategy table needs `type = \"NAME\"`".into()))?;
                Ok(Self { name, params })
            }
            other => Err(StrategyError::Syntax(format!("a strategy is a name or a table, not {other}"))),
        }
    }

    /// A model path written in a file is relative to that file's folder
    /// (as scenario paths in tournament files are); on the command line it
    /// stays relative to the working directory.
    pub fn relative_to(&mut self, base: &std::path::Path) {
        // `join` keeps an absolute path as it is.
        if self.name == "learned"
            && let Some(Json::String(path)) = self.params.get_mut("path")
        {
            *path = base.join(path.as_str()).to_string_lossy().into_owned();
        }
    }

    /// A remote caller's model: `{ learned = "NAME" }` names a model the
    /// operator published in `dir` (`--models`), never a path, so that a
    /// caller cannot make the server read files of its choosing. Rewrites
    /// the name into the published path; other strategies are untouched.
    pub fn publish_in(&mut self, dir: Option<&Path>) -> Result<(), StrategyError> {
        if self.name != "learned" {
            return Ok(());
        }
        let p = Params { spec: self };
        let name = self.params.get("path").and_then(Json::as_str).unwrap_or("");
        let Some(dir) = dir else {
            return Err(
                p.bad("path", "cannot be used here: this server publishes no models (it runs without --models)")
            );
        };
        let bare = !name.is_empty()
            && name.len() <= 128
            && !name.contains("..")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.');
        if !bare {
            return Err(p.bad(
                "path",
                "must be the name of a model this server publishes (letters, digits, `_`, `-`, `.`; no paths)",
            ));
        }
        let path = dir.join(name).to_string_lossy().into_owned();
        self.params.insert("path".into(), Json::String(path));
        Ok(())
    }

    /// The form [`StrategySpec::from_json`] reads back (how strategies travel
    /// to cluster nodes).
    pub fn to_json(&self) -> Json {
        if self.is_python() {
            return Json::Object(self.params.clone());
        }
        let mut map = self.params.clone();
        map.insert("type".into(), Json::String(self.name.clone()));
        Json::Object(map)
    }

    /// From the command line: `NAME` or an inline TOML table.
    pub fn parse_cli(s: &str) -> Result<Self, StrategyError> {
        let s = s.trim();
        if s.starts_with('{') {
            use serde::Deserialize as _;
            // Parsed as a value on its own, so that an error's column is
            // one in the text the user typed.
            let value = toml::Value::deserialize(toml::de::ValueDeserializer::new(s)).map_err(|e| {
                let (offset, message) = crate::core::toml_error::explain(s, &e, &[]);
                let mut message = message.trim().replace('\n', "; ");
                // toml's "invalid string; expected `\"`, `'`" where a key has
                // no value (`e = }`).
                let before = offset.and_then(|o| s.get(..o)).map(str::trim_end).unwrap_or("");
                if let Some(key) = before.strip_suffix('=').map(str::trim_end) {
                    let key = key.rsplit(['{', ',']).next().unwrap_or(key).trim();
                    if message.starts_with("invalid string") {
                        message = format!("`{key} =` has no value");
                    }
                }
                StrategyError::Syntax(match offset {
                    Some(o) => format!(
                        "`{s}` is not a valid strategy table: column {}: {message}",
                        crate::core::toml_error::line_column(s, o).1
                    ),
                    None => format!("`{s}` is not a valid strategy table: {message}"),
                })
            })?;
            let json = serde_json::to_value(&value).map_err(|e| StrategyError::Syntax(e.to_string()))?;
            Self::from_json(&json)
        } else {
            Ok(Self::named(s))
        }
    }

    /// Checks the name and parameters without building anything. (Whether
    /// a Python class exists is the agent host's to say: see
    /// `net::agent_host::check`.)
    pub fn validate(&self) -> Result<(), StrategyError> {
        if self.is_python() {
            return self.check_python();
        }
        self.build().map(|_| ())
    }

    /// Played by a Python agent host rather than in this process.
    pub fn is_python(&self) -> bool {
        self.name == "python"
    }

    /// The `module:Class` of a Python strategy.
    pub fn python_class(&self) -> Option<&str> {
        self.params.get("python").and_then(Json::as_str).filter(|_| self.is_python())
    }

    fn check_python(&self) -> Result<(), StrategyError> {
        let p = Params { spec: self };
        let class = self.params.get("python").and_then(Json::as_str).unwrap_or("");
        let (module, name) = class.rsplit_once(':').or_else(|| class.rsplit_once('.')).unwrap_or(("", ""));
        let ident = |s: &str| !s.is_empty() && s.split('.').all(|w| w.chars().all(|c| c.is_alphanumeric() || c == '_'));
        if !ident(module) || !ident(name) {
            return Err(
                p.bad("python", "must name a class as \"module:Class\" (e.g. \"negmas_genius_agents:HardHeaded\")")
            );
        }
        if self.params.get("params").is_some_and(|v| !v.is_object()) {
            return Err(p.bad("params", "must be a table of the class's keyword arguments"));
        }
        if let Some(d) = self.params.get("deadline")
            && !d.as_f64().is_some_and(|d| d > 0.0 && d.is_finite())
        {
            return Err(p.bad("deadline", "must be a positive number of seconds per call"));
        }
        if let Some(extra) = self.params.keys().find(|k| !["python", "params", "deadline"].contains(&k.as_str())) {
            return Err(StrategyError::UnknownParameter {
                strategy: "python".into(),
                param: extra.clone(),
                valid: "python, params, deadline".into(),
            });
        }
        Ok(())
    }

    pub fn build(&self) -> Result<Box<dyn Strategy>, StrategyError> {
        if self.name == "learned" {
            return self.build_learned();
        }
        if let Some(class) = self.python_class() {
            return Err(StrategyError::Hosted(class.to_string()));
        }
        if !STRATEGY_NAMES.contains(&self.name.as_str())
            && let Some(agent) = crate::core::agents::find(&self.name)
        {
            return agent.build(&self.params);
        }
        Ok(Box::new(self.build_boa()?))
    }

    fn build_learned(&self) -> Result<Box<dyn Strategy>, StrategyError> {
        let p = Params { spec: self };
        let path = self.params.get("path").and_then(Json::as_str).ok_or_else(|| p.bad("path", "is required"))?;
        if let Some(extra) = self.params.keys().find(|k| *k != "path") {
            return Err(StrategyError::UnknownParameter {
                strategy: self.name.clone(),
                param: extra.clone(),
                valid: "path".into(),
            });
        }
        let loader = LEARNED_LOADER.get().ok_or_else(|| {
            p.bad("path", "cannot be loaded: no model loader is registered (call negotium::learn::register())")
        })?;
        loader(Path::new(path)).map_err(StrategyError::Model)
    }

    pub fn build_boa(&self) -> Result<Boa, StrategyError> {
        let p = Params { spec: self };
        let (bidding, default_acceptance, allowed): (Bidding, Acceptance, &[&str]) = match self.name.as_str() {
            "boulware" => (Bidding::TimeDependent { e: 0.25 }, Acceptance::Target, &[]),
            "linear" => (Bidding::TimeDependent { e: 1.0 }, Acceptance::Target, &[]),
            "conceder" => (Bidding::TimeDependent { e: 4.0 }, Acceptance::Target, &[]),
            "time-dependent" => {
                let e = p.f64_or("e", None)?;
                if !(e > 0.0 && e.is_finite()) {
                    return Err(p.bad("e", "must be a positive number (e < 1 Boulware, 1 linear, e > 1 conceder)"));
                }
                (Bidding::TimeDependent { e }, Acceptance::Target, &["e"])
            }
            "hardliner" => (Bidding::Hardliner, Acceptance::Target, &[]),
            "random" => {
                let p_accept = p.f64_or("p_accept", Some(0.2))?;
                if !(0.0..=1.0).contains(&p_accept) {
                    return Err(p.bad("p_accept", "must lie in [0, 1]"));
                }
                (Bidding::Random, Acceptance::Probability(p_accept), &["p_accept"])
            }
            "tit-for-tat" => {
                let kindness = p.f64_or("kindness", Some(1.0))?;
                if !(kindness >= 0.0 && kindness.is_finite()) {
                    return Err(p.bad("kindness", "must be a non-negative number (1 mirrors the opponents exactly)"));
                }
                (Bidding::TitForTat { kindness }, Acceptance::Next, &["kindness"])
            }
            _ => return Err(StrategyError::UnknownStrategy(self.name.clone())),
        };
        for key in self.params.keys() {
            if !allowed.contains(&key.as_str()) && !COMMON_PARAMS.contains(&key.as_str()) {
                let mut valid: Vec<&str> = allowed.to_vec();
                valid.extend(COMMON_PARAMS);
                return Err(StrategyError::UnknownParameter {
                    strategy: self.name.clone(),
                    param: key.clone(),
                    valid: valid.join(", "),
                });
            }
        }
        let acceptance = match self.params.get("acceptance") {
            Some(v) => Acceptance::from_json(v).map_err(|problem| p.bad("acceptance", &problem))?,
            None => default_acceptance,
        };
        let opponent_model = match self.params.get("opponent_model").map(|v| v.as_str()) {
            None | Some(Some("none")) => None,
            Some(Some("frequency")) => Some(super::ModelKind::FREQUENCY),
            Some(Some("bayesian")) => Some(super::ModelKind::Bayesian),
            Some(_) => return Err(p.bad("opponent_model", "must be \"frequency\", \"bayesian\" or \"none\"")),
        };
        let convention = match self.params.get("convention").map(|v| v.as_str()) {
            None | Some(Some("negmas")) => Convention::Negmas,
            Some(Some("genius")) => Convention::Genius,
            Some(_) => return Err(p.bad("convention", "must be \"negmas\" or \"genius\"")),
        };
        Ok(Boa::new(bidding, acceptance, opponent_model).with_convention(convention))
    }
}

impl fmt::Display for StrategySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (true, Some(Json::String(path))) = (self.name == "learned", self.params.get("path")) {
            return write!(f, "learned({path})");
        }
        if let Some(class) = self.python_class() {
            let rest: Vec<String> =
                self.params.iter().filter(|(k, _)| *k != "python").map(|(k, v)| format!("{k}={v}")).collect();
            return if rest.is_empty() {
                write!(f, "python({class})")
            } else {
                write!(f, "python({class},{})", rest.join(","))
            };
        }
        if self.params.is_empty() {
            return write!(f, "{}", self.name);
        }
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{}({})", self.name, params.join(","))
    }
}

/// Parameters every built-in strategy except `learned` takes.
const COMMON_PARAMS: [&str; 3] = ["acceptance", "opponent_model", "convention"];

struct Params<'a> {
    spec: &'a StrategySpec,
}

impl Params<'_> {
    fn bad(&self, param: &str, problem: &str) -> StrategyError {
        StrategyError::BadParameter { strategy: self.spec.name.clone(), param: param.into(), problem: problem.into() }
    }

    fn f64_or(&self, key: &str, default: Option<f64>) -> Result<f64, StrategyError> {
        match self.spec.params.get(key) {
            Some(v) => v.as_f64().ok_or_else(|| self.bad(key, "must be a number")),
            None => default.ok_or_else(|| self.bad(key, "is required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = StrategySpec::named("genius").build().err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("unknown strategy `genius`"), "{msg}");
        for name in strategy_names() {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn python_strategies_are_checked_here_and_built_by_the_agent_host() {
        let spec = StrategySpec::parse_cli(
            "{ python = \"negmas_genius_agents:HardHeaded\", params = { name = \"hh\" }, deadline = 2.5 }",
        )
        .unwrap();
        assert!(spec.is_python());
        assert_eq!(spec.python_class(), Some("negmas_genius_agents:HardHeaded"));
        assert!(spec.validate().is_ok());
        assert_eq!(spec.to_string(), "python(negmas_genius_agents:HardHeaded,deadline=2.5,params={\"name\":\"hh\"})");
        assert_eq!(StrategySpec::from_json(&spec.to_json()).unwrap(), spec, "travels as it was written");
        let err = spec.build().err().unwrap().to_string();
        assert!(err.contains("runs in a Python agent host"), "{err}");
        for (text, needle) in [
            ("{ python = \"HardHeaded\" }", "must name a class as \"module:Class\""),
            ("{ python = \"m:C\", deadline = 0 }", "positive number of seconds"),
            ("{ python = \"m:C\", params = 3 }", "a table of the class's keyword arguments"),
            ("{ python = \"m:C\", speed = 3 }", "valid parameters: python, params, deadline"),
        ] {
            let err = StrategySpec::parse_cli(text).err().unwrap().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        let spec = StrategySpec::parse_cli("{ type = \"time-dependent\", e = 0.5 }").unwrap();
        assert_eq!(spec.to_string(), "time-dependent(e=0.5)");
        assert!(spec.build().is_ok());
        let missing = StrategySpec::named("time-dependent").build().err().unwrap();
        assert!(missing.to_string().contains("`e` is required"));
        let unknown = StrategySpec::parse_cli("{ type = \"boulware\", speed = 2 }").unwrap().build().err().unwrap();
        assert!(unknown.to_string().contains("unknown parameter `speed`"), "{unknown}");
        let acc =
            StrategySpec::parse_cli("{ type = \"linear\", acceptance = { type = \"ac_const\", c = 2 } }").unwrap();
        assert!(acc.build().is_err());
        let model = StrategySpec::parse_cli(
            "{ type = \"conceder\", opponent_model = \"frequency\", acceptance = \"ac_next\" }",
        )
        .unwrap();
        assert!(model.build().is_ok());
    }
}
