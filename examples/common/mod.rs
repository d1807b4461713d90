//! Scenario texts the soak and the cost measurements share.

/// One discrete issue of `n` values and two external parties (about 32
/// bytes of TOML a value: 30,000 values come near the server's 1 MiB
/// message limit).
pub fn many_values(n: usize) -> String {
    let values: Vec<String> = (0..n).map(|k| format!("\"v{k}\"")).collect();
    let table: Vec<String> = (0..n).map(|k| format!("v{k} = {}", if k == 0 { 1.0 } else { 0.0 })).collect();
    format!(
        "name = \"many\"\n[protocol]\nrounds = 10\n[[issues]]\nname = \"x\"\ntype = \"discrete\"\nvalues = [{}]\n\
         [[parties]]\nname = \"a\"\nexternal = true\nweights = {{ x = 1.0 }}\nvalues.x = {{ {} }}\n\
         [[parties]]\nname = \"b\"\nexternal = true\nweights = {{ x = 1.0 }}\nvalues.x = {{ {} }}\n",
        values.join(","),
        table.join(", "),
        table.join(", ")
    )
}
